"""The local-learning DeepLabV3-R101 Cityscapes configs.

* Each is the E2E config (mmseg's own recipe: 40k iterations, 2 images per
  GPU, SGD 0.01 poly, 512x1024 crops, ImageNet-pretrained ResNetV1c-101) plus
  one ``optim_wrapper`` delta, and its split lands where the papers put it on
  the real ResNetV1c-101.
* The user's whole path on the bundled real Cityscapes frame: ``tools/train.py``
  trains the HPFF K=4 config (R101, 64x128 crops, batch 2 = the frame twice,
  2 iterations, validation), ``tools/test.py --tta`` evaluates the checkpoint,
  ``strip_local_heads.py`` strips it, and mmseg's own ``init_model`` +
  ``inference_model`` load it without unexpected keys and predict the same
  map as from the unstripped checkpoint.
"""
import copy
import os
import os.path as osp
import subprocess
import sys

import pytest
import torch
from mmengine.config import Config
from mmengine.model import revert_sync_batchnorm
from mmengine.optim import build_optim_wrapper
from mmengine.registry import init_default_scope
from mmlocal.testing import repo_config as load  # configs/<name>
from mmlocal.local import LocalLearner

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CONFIGS = osp.join(ROOT, 'configs')
TOOLS = osp.join(ROOT, 'tools')
CITYSCAPES = osp.join(ROOT, 'tests', 'data', 'cityscapes')
FRAME = osp.join(CITYSCAPES, 'leftImg8bit', 'val', 'frankfurt',
                 'frankfurt_000000_000294_leftImg8bit.png')
E2E = 'deeplabv3_r101_cityscapes_e2e'
MMSEG_E2E = 'mmseg::deeplabv3/deeplabv3_r101-d8_4xb2-40k_cityscapes-512x1024.py'
HPFF_IMAGENET_K4 = ['backbone.layer3.0', 'backbone.layer3.9', 'backbone.layer3.17']
# name -> (boundaries, cascade window k, PFF patches)
LOCAL = {
    'deeplabv3_r101_cityscapes_infopro_k2': (['backbone.layer3.12'], 1, 1),
    'deeplabv3_r101_cityscapes_infopro_k4': (HPFF_IMAGENET_K4, 1, 1),
    # balanced on the measured peak at 2 x 512x1024 (tools/analysis/split_peaks.py)
    'deeplabv3_r101_cityscapes_infopro_k4-balanced':
        (['backbone.layer3.2', 'backbone.layer3.12', 'backbone.layer3.22'], 1, 1),
    'deeplabv3_r101_cityscapes_infopro_hpff': (HPFF_IMAGENET_K4, 2, 2),
    'deeplabv3_r101_cityscapes_infopro_hpff_k4-balanced':
        (['backbone.layer3.2', 'backbone.layer3.12', 'backbone.layer3.15'], 2, 2),
}


@pytest.mark.parametrize('name', sorted(LOCAL))
def test_local_config_is_a_delta_of_e2e(name):
    cfg, e2e = load(name), load(E2E)
    assert set(cfg.keys()) == set(e2e.keys())
    for key in cfg.keys():
        if key != 'optim_wrapper':
            assert cfg[key] == e2e[key], key
    # the anchors' recipe, untouched
    assert e2e.model.backbone.type == 'ResNetV1c' and e2e.model.backbone.depth == 101
    assert e2e.model.pretrained == 'open-mmlab://resnet101_v1c'
    assert e2e.crop_size == (512, 1024) and e2e.train_dataloader.batch_size == 2
    assert e2e.train_cfg.max_iters == 40000
    assert e2e.param_scheduler[0].type == 'PolyLR'
    assert e2e.norm_cfg.type == 'SyncBN'  # BN when not distributed (Runner)
    # the pipeline slots the end-to-end test below shrinks
    pipeline = cfg.train_dataloader.dataset.pipeline
    assert [pipeline[2].type, pipeline[3].type] == ['RandomResize', 'RandomCrop']
    assert cfg.test_dataloader.dataset.pipeline[1].type == 'Resize'

    ow = cfg.optim_wrapper
    assert ow.type == 'LocalLearningOptimWrapper'
    assert ow.constructor == 'LocalLearningOptimWrapperConstructor'
    assert ow.optimizer == e2e.optim_wrapper.optimizer  # SGD 0.01, momentum 0.9, wd 5e-4
    method = ow.local.method
    assert method.type == 'InfoPro'  # InfoPro's Cityscapes lambdas
    assert tuple(method.recon_weights) == (1.5, 1.5)
    assert tuple(method.task_weights) == (1., 1.)


@pytest.fixture(scope='module')
def resnet101_segmentor():
    from mmseg.registry import MODELS
    init_default_scope('mmseg')
    model_cfg = copy.deepcopy(load(E2E).model)
    model_cfg.pretrained = None
    return revert_sync_batchnorm(MODELS.build(model_cfg))


@pytest.mark.parametrize('name', sorted(LOCAL))
def test_split_on_resnet101(name, resnet101_segmentor):
    """Boundaries, head types and channels on the real ResNetV1c-101."""
    from mmlocal.models.heads.aux_classifiers import SegAuxClassifier
    from mmlocal.models.heads.decoders import UpsampleDecoder
    model = resnet101_segmentor
    cfg = load(name)
    bounds, window, patches = LOCAL[name]
    build_optim_wrapper(model, cfg.optim_wrapper)  # replaces an earlier learner
    learner = LocalLearner.of(model)
    assert learner.boundaries == bounds
    hilo, pff = learner.cfg.hilo, learner.cfg.pff
    assert (hilo.cascade if hilo else 1, pff.patches if pff else 1) == (window, patches)
    assert [f.channels for f in learner.features] == [1024] * len(bounds)
    assert sorted(learner.heads) == [f'm{j + 1}' for j in range(len(bounds))]
    if window > 1:  # HiLo: cascade heads from module k on
        assert sorted(learner.cascade_heads) == ['m2', 'm3']
        assert (hilo.independent_weight, hilo.cascade_weight) == (0.001, 0.999)
    for head in list(learner.heads.values()) + list(learner.cascade_heads.values()):
        assert isinstance(head.classifier, SegAuxClassifier)
        assert isinstance(head.decoder, UpsampleDecoder)
        assert head.classifier.cls.out_channels == 19
        assert head.recon_weight == 1.5 and head.loss_weight == 1.  # task weight
        # plain BN here; the learner makes them SyncBN in distributed CUDA runs
        assert not any(isinstance(m, torch.nn.SyncBatchNorm) for m in head.modules())


@pytest.mark.parametrize('local,bounds', [
    (dict(num_modules=8, split='hpff-imagenet'),
     ['backbone.layer2.0'] + [f'backbone.layer3.{i}' for i in (1, 5, 9, 13, 17, 21)]),
    # 33 blocks: 11 each (layer1 3 + layer2 4 + layer3[0..3]; layer3[4..14])
    (dict(num_modules=3, split='blocks'), ['backbone.layer3.3', 'backbone.layer3.14']),
    (dict(boundaries=['layer2.3']), ['backbone.layer2.3']),
])
def test_any_split_by_name(local, bounds, resnet101_segmentor):
    base = load('deeplabv3_r101_cityscapes_infopro_k4').optim_wrapper
    base.local.pop('num_modules')
    base.local.pop('split')
    base.local.update(local)
    build_optim_wrapper(resnet101_segmentor, base)
    assert LocalLearner.of(resnet101_segmentor).boundaries == bounds


# ------------------------------------------------- the tools, end to end
def tool(name: str, *args) -> str:
    env = dict(os.environ, PYTHONPATH=ROOT, OMP_NUM_THREADS='1')
    out = subprocess.run([sys.executable, osp.join(TOOLS, name), *args], cwd=ROOT,
                         env=env, capture_output=True, text=True, timeout=400)
    log = out.stdout + out.stderr
    assert out.returncode == 0, log[-6000:]
    return log


def data_options(*splits: str) -> list:
    opts = ['model.pretrained=None']  # no download
    for split in splits:
        opts += [f'{split}_dataloader.dataset.data_root={CITYSCAPES}',
                 f'{split}_dataloader.num_workers=0',
                 f'{split}_dataloader.persistent_workers=False']
    return opts


def small_test_config(cfg: Config) -> Config:
    """What ``inference_model`` runs: the bundled frame at its own 128x256
    (not upscaled to 1024x2048), no download."""
    cfg = copy.deepcopy(cfg)
    cfg.model.pretrained = None
    cfg.test_pipeline[1].scale = (256, 128)
    return cfg


def predict(cfg: Config, checkpoint: str):
    from mmseg.apis import inference_model, init_model
    model = init_model(small_test_config(cfg), checkpoint, device='cpu')
    with torch.no_grad():
        return inference_model(model, FRAME)


def test_hpff_train_tta_strip_inference(tmp_path, capsys):
    config = osp.join(CONFIGS, 'deeplabv3_r101_cityscapes_infopro_hpff.py')
    work_dir = str(tmp_path / 'work')
    crop = (64, 128)
    log = tool(
        'train.py', config, '--work-dir', work_dir, '--cfg-options',
        *data_options('train', 'val', 'test'),
        f'model.data_preprocessor.size={crop}',
        'train_dataloader.dataset.pipeline.2.scale=(256,128)',
        f'train_dataloader.dataset.pipeline.3.crop_size={crop}',
        'val_dataloader.dataset.pipeline.1.scale=(256,128)',
        'train_cfg.max_iters=2', 'train_cfg.val_interval=2',
        'default_hooks.checkpoint.interval=2',
        'default_hooks.logger.interval=1', 'randomness.seed=0')
    assert 'Iter(train) [2/2]' in log
    for key in ('local.m1.loss_seg', 'local.m1.loss_recon', 'local.m3.cascade.loss_seg',
                'decode.loss_ce', 'aux.loss_ce'):
        assert key in log, key
    assert 'mIoU' in log  # validation ran on the unarmed model
    ckpt = osp.join(work_dir, 'iter_2.pth')
    checkpoint = torch.load(ckpt, map_location='cpu', mmap=True)
    # the model's state is the toolbox's; the heads travel beside it
    assert not any(k.startswith('local_learner.') for k in checkpoint['state_dict'])
    heads = checkpoint['optimizer']['local_learner']
    assert any(k.startswith('cascade_heads.m3.') for k in heads)
    del checkpoint, heads

    # multi-scale + flip test; the bundled frame is 256x128: scale factors of
    # the config / 2 (1.0 = 128x64)
    ratios = [0.5, 0.75, 1.0, 1.25, 1.5, 1.75]
    tta = [f'tta_pipeline.1.transforms.0.{i}.scale_factor={r / 2}'
           for i, r in enumerate(ratios)]
    log = tool('test.py', config, ckpt, '--tta', '--work-dir', str(tmp_path / 'test'),
               '--cfg-options', *data_options('test'), *tta)
    assert "type='SegTTAModel'" in log and 'mIoU' in log
    assert 'unexpected key' not in log and 'local-learning keys' not in log

    # mmseg's own tools/test.py loads it with no unexpected-key line
    import mmseg
    own = osp.join(osp.dirname(mmseg.__file__), '.mim', 'tools', 'test.py')
    log = tool(own, config, ckpt, '--work-dir', str(tmp_path / 'own'),
               '--cfg-options', *data_options('test'),
               'test_dataloader.dataset.pipeline.1.scale=(256,128)')
    assert 'mIoU' in log
    assert 'unexpected key' not in log and 'missing keys' not in log

    # and mmseg's own API, with our config and with mmseg's own E2E config
    capsys.readouterr()
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        from mmengine.hub import get_config
        before = predict(load('deeplabv3_r101_cityscapes_infopro_hpff'), ckpt)
        after = predict(get_config(MMSEG_E2E), ckpt)
    finally:
        torch.set_num_threads(threads)
    out = capsys.readouterr().out
    assert 'unexpected key' not in out and 'missing keys' not in out
    assert after.pred_sem_seg.shape == (128, 256)  # the bundled frame's size
    assert torch.equal(after.pred_sem_seg.data, before.pred_sem_seg.data)
    torch.testing.assert_close(after.seg_logits.data, before.seg_logits.data)
