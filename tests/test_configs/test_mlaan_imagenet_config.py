"""The ImageNet ResNet-34 K=17 MLAAN config trains and evaluates (real images)."""
import os.path as osp

from mmlocal.local import LocalLearner
from mmengine.config import Config

from test_configs.test_imagenet_vit_configs import (CONFIGS, IMAGENET_MINI, TRAIN_INDICES,
                                                    _check_local, _short_run,
                                                    _train_and_validate)


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
