"""The ImageNet ResNet and ViT-B/16 configs train and evaluate through the
real mmengine Runner on bundled real images: the ImageNet ones on a 3-class
Tiny-ImageNet subset in mmpretrain's annotation format (64x64 crops), the
ViT-B/16 ones (real ViT-B arch) on the bundled CIFAR-10 subset at 32x32 (a
2x2 token grid). Only sizes, data roots and the length of the run change."""
import os.path as osp

import pytest
from mmengine.config import Config
from mmengine.logging import MessageHub
from mmengine.runner import Runner

from mmlocal.local import LocalLearner

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CONFIGS = osp.join(ROOT, 'configs')
IMAGENET_MINI = osp.join(ROOT, 'tests', 'data', 'imagenet_mini')
CIFAR_MINI = osp.join(ROOT, 'data', 'cifar10_mini')

IMAGENET_CONFIGS = [
    'resnet101_imagenet_e2e', 'resnet101_imagenet_infopro_k2',
    'resnet101_imagenet_infopro_k4', 'resnet101_imagenet_infopro_hpff_k4',
    'resnet152_imagenet_infopro_hpff_k4', 'resnext101-32x8d_imagenet_infopro_hpff_k4'
]
VIT_CONFIGS = ['vit-b16_cifar10_e2e', 'vit-b16_cifar10_dgl_k12',
               'vit-b16_cifar10_dgl_hpff_k12']
# 8 training images of 3 classes (the annotation file is sorted by class)
TRAIN_INDICES = [0, 8, 16, 1, 9, 17, 2, 10]


def _short_run(cfg: Config, tmp_path, data_root: str, train_pipeline, test_pipeline,
               train_indices, val_indices=None) -> Config:
    """One epoch of 2 iterations (batch 4) then validation, no checkpoint."""
    cfg.work_dir = str(tmp_path)
    cfg.launcher = 'none'
    for name in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        dl = cfg[name]
        dl.batch_size = 4
        dl.num_workers = 0
        dl.persistent_workers = False
        dl.dataset.data_root = data_root
        train = name == 'train_dataloader'
        dl.dataset.pipeline = train_pipeline if train else test_pipeline
        indices = train_indices if train else val_indices
        if indices is not None:
            dl.dataset.indices = indices
    cfg.train_cfg = dict(by_epoch=True, max_epochs=1, val_interval=1)
    cfg.default_hooks.checkpoint = None
    cfg.default_hooks.logger = dict(type='LoggerHook', interval=1)
    cfg.log_level = 'WARNING'
    return cfg


def _train_and_validate(cfg: Config):
    runner = Runner.from_cfg(cfg)
    runner.train()
    hub = MessageHub.get_current_instance()
    assert runner.iter == 2
    assert 'val/accuracy/top1' in hub.log_scalars, sorted(hub.log_scalars)
    return runner, hub.log_scalars


def _check_local(runner, scalars, name: str) -> None:
    learner = LocalLearner.of(runner.model)
    if name.endswith('_e2e'):
        assert learner is None
        return
    assert learner is not None and learner.num_modules > 1
    logged = [k for k in scalars if k.startswith('train/local.')]
    assert logged, 'local losses were not logged'
    # the heads travel beside the model's state, in the optim wrapper's
    assert not any(k.startswith('local_learner.') for k in runner.model.state_dict())
    assert runner.optim_wrapper.state_dict()['local_learner']


@pytest.mark.parametrize('name', IMAGENET_CONFIGS)
def test_imagenet_config_trains_and_evaluates(name, tmp_path):
    cfg = Config.fromfile(osp.join(CONFIGS, f'{name}.py'))
    train = [dict(type='LoadImageFromFile'),
             dict(type='RandomResizedCrop', scale=64),
             dict(type='RandomFlip', prob=0.5, direction='horizontal'),
             dict(type='PackInputs')]
    test = [dict(type='LoadImageFromFile'),
            dict(type='ResizeEdge', scale=73, edge='short'),
            dict(type='CenterCrop', crop_size=64),
            dict(type='PackInputs')]
    cfg = _short_run(cfg, tmp_path, IMAGENET_MINI, train, test, TRAIN_INDICES)
    runner, scalars = _train_and_validate(cfg)
    _check_local(runner, scalars, name)
    learner = LocalLearner.of(runner.model)
    if learner is not None:
        head = learner.heads['m1'] if learner.heads else learner.cascade_heads['m2']
        if name.endswith('_k2'):  # InfoPro's ImageNet psi and w (§2.5) on layer2[0]
            assert learner.boundaries == ['backbone.layer2.0']
            assert type(head.classifier).__name__ == 'ImageNetAuxClassifier'
            assert head.classifier.convs[0][0].in_channels == 512
            assert head.classifier.convs[0][0].out_channels == 128
            assert type(head.decoder).__name__ == 'UpsampleDecoder'
        else:  # HPFF's psi for 1024 channels (§5.4)
            assert head.classifier.convs[0][0].in_channels == 1024
            assert head.classifier.convs[0][0].out_channels == 256
            assert learner.boundaries == ['backbone.layer3.0', 'backbone.layer3.9',
                                          'backbone.layer3.17']
        if 'hpff' in name:  # the authors' ImageNet HiLo: cascades only, PFF 2x2
            assert len(learner.heads) == 0 and set(learner.cascade_heads) == {'m2', 'm3'}
            assert learner.cfg.pff.patches == 2
            assert 'train/local.m2.cascade.loss_recon' in scalars


@pytest.mark.parametrize('name', VIT_CONFIGS)
def test_vit_b16_config_trains_and_evaluates(name, tmp_path):
    if not osp.isdir(CIFAR_MINI):
        pytest.skip(f'bundled CIFAR-10 subset missing under {CIFAR_MINI}')
    cfg = Config.fromfile(osp.join(CONFIGS, f'{name}.py'))
    # the configs' pipelines with the resize to 224 replaced by 32 (2x2 tokens)
    train = [dict(t, scale=32) if t['type'] == 'Resize' else t
             for t in cfg.train_dataloader.dataset.pipeline]
    test = [dict(t, scale=32) if t['type'] == 'Resize' else t
            for t in cfg.val_dataloader.dataset.pipeline]
    cfg.model.backbone.img_size = 32
    cfg = _short_run(cfg, tmp_path, CIFAR_MINI, train, test,
                     train_indices=list(range(0, 2000, 250)), val_indices=8)
    runner, scalars = _train_and_validate(cfg)
    _check_local(runner, scalars, name)
    learner = LocalLearner.of(runner.model)
    if learner is not None:
        assert learner.num_modules == 12
        assert learner.boundaries == [f'backbone.layers.{i}' for i in range(11)]
        assert learner.features[0].tokens and learner.features[0].spatial == (2, 2)
        if 'hpff' in name:
            assert len(learner.heads) == 11 and len(learner.cascade_heads) == 10
            assert 'train/local.m11.cascade.loss_cls' in scalars


def _learner(name: str, **local):
    """The config's model with its local learner (no optimizer, no init)."""
    from mmengine.registry import init_default_scope
    from mmpretrain.registry import MODELS

    from mmlocal.local import build_learner
    cfg = Config.fromfile(osp.join(CONFIGS, f'{name}.py'))
    init_default_scope('mmpretrain')
    model = MODELS.build(cfg.model)
    return model, build_learner(model, dict(cfg.optim_wrapper.local, **local))


def test_imagenet_k8_split_and_inferred_channels():
    """HPFF's K=8 end points (ALGORITHMS.md §1.3); psi and w take the width
    of the map they sit on (layer2: 512, layer3: 1024)."""
    model, learner = _learner('resnet101_imagenet_infopro_k4', num_modules=8)
    assert learner.boundaries == ['backbone.layer2.0'] + [
        f'backbone.layer3.{b}' for b in (1, 5, 9, 13, 17, 21)]
    widths = [h.classifier.convs[0][0].in_channels for h in learner.heads.values()]
    assert widths == [512] + [1024] * 6
    assert [h.decoder.reduce[0].in_channels for h in learner.heads.values()] == widths


@pytest.mark.parametrize('k', [2, 4, 8])
def test_imagenet_activations_balanced_split(k):
    """split='activations': modules of near-equal activation memory, recomputed
    here from the outputs of every leaf module of each block."""
    import torch

    from mmlocal.local.split import block_paths
    model, learner = _learner('resnet101_imagenet_infopro_k4', num_modules=k,
                              split='activations')
    assert len(learner.boundaries) == k - 1
    paths = block_paths(model)
    cost = {p: 0 for p in paths}
    handles = []
    for p in paths:
        for m in model.get_submodule(p).modules():
            if not list(m.children()):
                handles.append(m.register_forward_hook(
                    lambda mod, a, out, p=p: cost.__setitem__(p, cost[p] + out.numel())))
    with torch.no_grad():
        model.backbone.eval()
        model.backbone(torch.zeros(2, 3, *learner.probe.size))
    for h in handles:
        h.remove()
    cuts = [paths.index(b) for b in learner.boundaries] + [len(paths) - 1]
    shares, lo = [], 0
    for c in cuts:
        shares.append(sum(cost[p] for p in paths[lo:c + 1]))
        lo = c + 1
    total = sum(cost.values())
    step = max(cost.values())  # no split can be finer than one block
    for s in shares:
        assert abs(s - total / k) <= step, (shares, total / k)


def test_resnet34_mlaan_k17_trains(tmp_path):
    cfg = Config.fromfile(osp.join(CONFIGS, 'resnet34_imagenet_dgl_mlaan_k17.py'))
    train = [dict(type='LoadImageFromFile'), dict(type='RandomResizedCrop', scale=64),
             dict(type='PackInputs')]
    test = [dict(type='LoadImageFromFile'), dict(type='ResizeEdge', scale=73, edge='short'),
            dict(type='CenterCrop', crop_size=64), dict(type='PackInputs')]
    cfg = _short_run(cfg, tmp_path, IMAGENET_MINI, train, test, TRAIN_INDICES)
    runner, scalars = _train_and_validate(cfg)
    _check_local(runner, scalars, 'resnet34_imagenet_dgl_mlaan_k17')
    learner = LocalLearner.of(runner.model)
    assert learner.num_modules == 17 and learner.boundaries[0] == 'backbone.maxpool'
    leaps = learner.leap_heads()
    assert len(leaps) == 13  # cascade windows of 3 at segments i = 2..S-2 (ALGORITHMS.md §6.3)
    assert all(bool(h.synced) for h in leaps)
    assert leaps[0].sources[-1] == 'backbone.layer4.2'
