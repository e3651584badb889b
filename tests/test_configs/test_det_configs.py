"""The detector configs (Faster R-CNN and RetinaNet R50-FPN on COCO).

* each local config is its E2E config plus one ``optim_wrapper`` delta, and
  the E2E configs are mmdet's own (TTA added to Faster R-CNN);
* on the real R50 the split, strides, channels and head types are right;
* every config trains 2 iterations through ``tools/train.py`` on the real
  Cityscapes frame (its person and car boxes, COCO JSON) and evaluates with
  mmdet's ``CocoMetric``; ``tools/test.py --tta`` runs mmdet's DetTTAModel;
  the local configs also train under mmdet's own ``tools/train.py``.
"""
import copy
import json
import os
import os.path as osp
import subprocess
import sys

import mmcv
import numpy as np
import pytest

from mmlocal.testing import repo_config as load  # configs/<name>
from mmlocal.local import LocalLearner

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CONFIGS = osp.join(ROOT, 'configs')
CITYSCAPES = osp.join(ROOT, 'tests', 'data', 'cityscapes')
FRAME = 'frankfurt_000000_000294'
BOUNDS = ['backbone.layer2.3', 'backbone.layer3.2', 'backbone.layer3.5']
DETECTORS = {
    'faster-rcnn_r50_fpn_coco': ('mmdet::faster_rcnn/faster-rcnn_r50_fpn_1x_coco.py',
                                 'roi_head.bbox_head', ['dgl_k4', 'infopro_k4',
                                                        'infopro_hpff_k4']),
    'retinanet_r50_fpn_coco': ('mmdet::retinanet/retinanet_r50_fpn_1x_coco.py', 'bbox_head',
                               ['dgl_k4', 'infopro_hpff_k4']),
}
LOCAL = [(det, m) for det, (_, _, methods) in DETECTORS.items() for m in methods]
ALL = [f'{det}_e2e' for det in DETECTORS] + [f'{d}_{m}' for d, m in LOCAL]


def unscoped(node):
    """A config node without the ``_scope_`` keys that ``mmdet::`` inheritance adds."""
    if isinstance(node, dict):
        return {k: unscoped(v) for k, v in node.items() if k != '_scope_'}
    if isinstance(node, (list, tuple)):
        return [unscoped(v) for v in node]
    return node


@pytest.mark.parametrize('det', sorted(DETECTORS))
def test_e2e_is_mmdets_own(det):
    from mmengine.hub import get_config
    cfg, zoo = load(f'{det}_e2e'), get_config(DETECTORS[det][0])
    for key in ('model', 'optim_wrapper', 'param_scheduler', 'train_cfg',
                'train_pipeline', 'test_pipeline'):
        assert unscoped(cfg[key]) == unscoped(zoo[key]), key
    assert cfg.tta_model.type == 'DetTTAModel'
    assert cfg.train_dataloader.dataset.data_root == 'data/coco/'
    assert cfg.val_evaluator.type == 'CocoMetric'
    assert cfg.custom_imports.imports == ['mmlocal']


@pytest.mark.parametrize('det,method', LOCAL)
def test_local_config_is_a_delta_of_e2e(det, method):
    cfg, e2e = load(f'{det}_{method}'), load(f'{det}_e2e')
    assert set(cfg.keys()) == set(e2e.keys())
    for key in cfg.keys():
        if key != 'optim_wrapper':
            assert cfg[key] == e2e[key], key
    ow = cfg.optim_wrapper
    assert ow.type == 'LocalLearningOptimWrapper'
    assert ow.optimizer == e2e.optim_wrapper.optimizer
    assert ow.local.method.type == ('DGL' if method.startswith('dgl') else 'InfoPro')
    assert ('hilo' in ow.local) == ('pff' in ow.local) == ('hpff' in method)
    with open(osp.join(CONFIGS, f'{det}_{method}.py')) as f:
        assert f.read().startswith('"""'), 'the docstring says what the config is for'


@pytest.fixture(scope='module')
def r50_models():
    from mmengine.registry import init_default_scope
    from mmdet.registry import MODELS
    init_default_scope('mmdet')
    out = {}
    for det in DETECTORS:
        model_cfg = copy.deepcopy(load(f'{det}_e2e').model)
        model_cfg.backbone.init_cfg = None
        out[det] = MODELS.build(model_cfg)
    return out


@pytest.mark.parametrize('det,method', LOCAL)
def test_heads_on_the_real_r50(det, method, r50_models):
    from mmengine.optim import build_optim_wrapper
    model = r50_models[det]
    build_optim_wrapper(model, load(f'{det}_{method}').optim_wrapper)
    learner = LocalLearner.of(model)
    assert learner.boundaries == BOUNDS
    assert learner.task.task == 'detection' and learner.task.num_classes == 80
    assert [(f.channels, f.stride) for f in learner.features] == [(512, 8), (1024, 16),
                                                                   (1024, 16)]
    heads = list(learner.heads.values()) + list(learner.cascade_heads.values())
    kind = 'DetClassifierHead' if method.startswith('dgl') else 'DetInfoProHead'
    for head, feat in zip(learner.heads.values(), learner.features):
        assert type(head).__name__ == kind
        retina = head.dense_head
        assert type(retina).__name__ == 'RetinaHead' and retina.num_classes == 80
        assert retina.in_channels == feat.channels
        assert retina.prior_generator.strides == [(feat.stride, feat.stride)]
    if 'hpff' in method:
        assert (learner.cfg.hilo.cascade, learner.cfg.pff.patches) == (2, 2)
        assert sorted(learner.cascade_heads) == ['m2', 'm3']
    if kind == 'DetInfoProHead':
        assert all(h.recon_weight == 1.5 and h.loss_weight == 1. for h in heads)


# ------------------------------------------------- the tools, end to end
def frame_coco(tmp_path) -> str:
    """The real frame (twice: a batch of 2) with its person and car boxes, COCO JSON."""
    ids = mmcv.imread(osp.join(CITYSCAPES, 'gtFine/val/frankfurt',
                               f'{FRAME}_gtFine_instanceIds.png'), flag='unchanged')
    h, w = ids.shape
    anns = []
    for image_id in (1, 2):
        for inst in np.unique(ids):
            if inst >= 1000 and inst // 1000 in (24, 26):
                ys, xs = np.nonzero(ids == inst)
                x1, y1, x2, y2 = int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1
                anns.append(dict(id=len(anns) + 1, image_id=image_id,
                                 category_id=1 if inst // 1000 == 24 else 2,
                                 bbox=[x1, y1, x2 - x1, y2 - y1], area=(x2 - x1) * (y2 - y1),
                                 iscrowd=0))
    name = f'frankfurt/{FRAME}_leftImg8bit.png'
    coco = dict(images=[dict(id=i, file_name=name, width=w, height=h) for i in (1, 2)],
                annotations=anns,
                categories=[dict(id=1, name='person'), dict(id=2, name='car')])
    path = str(tmp_path / 'frame_coco.json')
    with open(path, 'w') as f:
        json.dump(coco, f)
    return path


def data_options(det: str, ann: str) -> list:
    _, head, _ = DETECTORS[det]
    opts = ['model.backbone.init_cfg=None', f'model.{head}.num_classes=2',
            'train_dataloader.dataset.pipeline.2.scale=(256,128)',
            'train_cfg.max_epochs=2', 'train_cfg.val_interval=2',
            'default_hooks.checkpoint.interval=2',
            'default_hooks.checkpoint.save_optimizer=False',
            'default_hooks.logger.interval=1', 'randomness.seed=0',
            f'val_evaluator.ann_file={ann}', f'test_evaluator.ann_file={ann}']
    for split in ('train', 'val', 'test'):
        opts += [f'{split}_dataloader.dataset.data_root={CITYSCAPES}',
                 f'{split}_dataloader.dataset.ann_file={ann}',
                 f'{split}_dataloader.dataset.data_prefix.img=leftImg8bit/val/',
                 f'{split}_dataloader.dataset.metainfo.classes=(person,car)',
                 f'{split}_dataloader.num_workers=0',
                 f'{split}_dataloader.persistent_workers=False']
    for split in ('val', 'test'):
        opts += [f'{split}_dataloader.dataset.pipeline.1.scale=(256,128)']
    if head == 'bbox_head':
        # RetinaNet after 2 iterations scores ~0.01 (its focal prior): keep
        # the boxes so that CocoMetric has detections to evaluate
        opts += ['model.test_cfg.score_thr=0.0']
    return opts


def run(script: str, *args) -> str:
    env = dict(os.environ, PYTHONPATH=ROOT, OMP_NUM_THREADS='1')
    out = subprocess.run([sys.executable, script, *args], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=600)
    log = out.stdout + out.stderr
    assert out.returncode == 0, log[-6000:]
    return log


def mmdet_train_script() -> str:
    import mmdet
    return osp.join(osp.dirname(mmdet.__file__), '.mim', 'tools', 'train.py')


@pytest.mark.slow
@pytest.mark.parametrize('name', ALL)
def test_trains_2_iters_and_evaluates_with_coco_metric(name, tmp_path):
    det = name.rsplit('_', 1)[0] if name.endswith('e2e') else \
        next(d for d in DETECTORS if name.startswith(d))
    ann = frame_coco(tmp_path)
    log = run(osp.join(ROOT, 'tools', 'train.py'), osp.join(CONFIGS, f'{name}.py'),
              '--work-dir', str(tmp_path / 'work'), '--cfg-options',
              *data_options(det, ann))
    assert 'Epoch(train) [2][1/1]' in log
    assert 'coco/bbox_mAP' in log  # CocoMetric on the unarmed model
    if not name.endswith('e2e'):
        assert 'local.m1.loss_cls' in log and 'local.m1.loss_bbox' in log
    assert osp.exists(tmp_path / 'work' / 'epoch_2.pth')


@pytest.mark.slow
def test_tta_on_a_local_checkpoint(tmp_path):
    name = 'faster-rcnn_r50_fpn_coco_infopro_hpff_k4'
    det = 'faster-rcnn_r50_fpn_coco'
    ann = frame_coco(tmp_path)
    config = osp.join(CONFIGS, f'{name}.py')
    work = str(tmp_path / 'work')
    run(osp.join(ROOT, 'tools', 'train.py'), config, '--work-dir', work,
        '--cfg-options', *data_options(det, ann), 'train_cfg.max_epochs=1',
        'train_cfg.val_interval=1', 'default_hooks.checkpoint.interval=1')
    # mmdet's TTA (DetTTAModel): 3 scales x flip, shrunk to the frame's size
    scales = ['(256,128)', '(128,64)', '(384,192)']
    log = run(osp.join(ROOT, 'tools', 'test.py'), config, osp.join(work, 'epoch_1.pth'),
              '--tta', '--work-dir', str(tmp_path / 'test'), '--cfg-options',
              *data_options(det, ann),
              *[f'tta_pipeline.1.transforms.0.{i}.scale={s}' for i, s in enumerate(scales)])
    assert "type='DetTTAModel'" in log and 'coco/bbox_mAP' in log
    # the heads are beside the model's state: nothing to drop, nothing unexpected
    assert 'local-learning keys' not in log and 'unexpected key' not in log


@pytest.mark.slow
@pytest.mark.parametrize('name', ['faster-rcnn_r50_fpn_coco_dgl_k4',
                                  'retinanet_r50_fpn_coco_infopro_hpff_k4'])
def test_runs_under_mmdets_own_train_script(name, tmp_path):
    det = next(d for d in DETECTORS if name.startswith(d))
    ann = frame_coco(tmp_path)
    log = run(mmdet_train_script(), osp.join(CONFIGS, f'{name}.py'),
              '--work-dir', str(tmp_path / 'work'), '--cfg-options',
              *data_options(det, ann))
    assert 'Epoch(train) [2][1/1]' in log and 'coco/bbox_mAP' in log
    assert 'local.m1.loss_cls' in log


def test_mask_rcnn_configs_are_mmdets_own_and_a_delta():
    """Mask R-CNN on Cityscapes: the E2E config is mmdet's own; the DGL K=4
    config changes only the optim wrapper (its steps are checked on the real
    frame's instances in test_det_isolation.py and test_every_param_grad.py)."""
    from mmengine.hub import get_config
    e2e = load('mask-rcnn_r50_fpn_cityscapes_e2e')
    zoo = get_config('mmdet::cityscapes/mask-rcnn_r50_fpn_1x_cityscapes.py')
    for key in ('model', 'optim_wrapper', 'param_scheduler', 'train_cfg', 'load_from'):
        assert unscoped(e2e[key]) == unscoped(zoo[key]), key
    assert unscoped(e2e.train_dataloader.dataset) == unscoped(zoo.train_dataloader.dataset)
    assert e2e.custom_imports.imports == ['mmlocal']
    dgl = load('mask-rcnn_r50_fpn_cityscapes_dgl_k4')
    assert set(dgl.keys()) == set(e2e.keys())
    assert all(dgl[k] == e2e[k] for k in dgl.keys() if k != 'optim_wrapper')
    assert dgl.optim_wrapper.local == dict(boundaries=['layer2.3', 'layer3.2', 'layer3.5'],
                                           method=dict(type='DGL'))
    assert dgl.optim_wrapper.optimizer == e2e.optim_wrapper.optimizer
