"""A config's model, optim wrapper and a real batch, as the Runner has them."""
import math
import os.path as osp

import pytest
import torch
from mmengine.config import Config
from mmengine.optim import OptimWrapper

from mmlocal import apis
from mmlocal.testing import CIFAR_MINI, cifar_classifier_cfg

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
DGL = osp.join(ROOT, 'configs', 'resnet32_cifar10_dgl_k8.py')


def test_top_level_data_preprocessor_is_the_models():
    model_cfg = cifar_classifier_cfg(depth=20)
    pre = model_cfg.pop('data_preprocessor')
    cfg = Config(dict(default_scope='mmpretrain', model=model_cfg, data_preprocessor=pre,
                      optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.1))))
    model, wrapper = apis.build_model_and_optim_wrapper(cfg)
    assert type(model.data_preprocessor).__name__ == 'ClsDataPreprocessor'
    assert model.data_preprocessor.mean.flatten().tolist() == pytest.approx(pre['mean'])
    assert model.training and type(wrapper) is OptimWrapper
    assert 'data_preprocessor' not in cfg.model  # the config is left as it was


def test_scope_and_custom_imports():
    """A config built in code: its scope's registries and its custom imports
    (a module that registers a model) are in effect when building."""
    cfg = Config(dict(
        default_scope='mmseg', custom_imports=dict(imports=['mmlocal.models.backbones'],
                                                   allow_failed_imports=False),
        model=dict(type='EncoderDecoder',
                   data_preprocessor=dict(type='SegDataPreProcessor'),
                   backbone=dict(type='CifarResNet', depth=20),
                   decode_head=dict(type='FCNHead', in_channels=64, channels=8, num_convs=1,
                                    num_classes=3),
                   train_cfg=dict(), test_cfg=dict(mode='whole'))))
    model = apis.build_model(cfg)
    assert type(model).__module__.startswith('mmseg.')
    assert type(model.backbone).__name__ == 'CifarResNet'
    cfg.custom_imports = dict(imports=['mmlocal.no_such_module'], allow_failed_imports=False)
    with pytest.raises(ImportError):
        apis.build_model(cfg)


def test_local_config_builds_its_learner_and_takes_a_real_step():
    if not osp.isdir(osp.join(CIFAR_MINI, 'train')):
        pytest.skip(f'bundled CIFAR-10 subset missing under {CIFAR_MINI}')
    cfg = apis.load_config(DGL, {'model.backbone.depth': 20,
                                 'train_dataloader.dataset.data_root': CIFAR_MINI})
    assert cfg.model.backbone.depth == 20
    torch.manual_seed(0)
    model, wrapper = apis.build_model_and_optim_wrapper(cfg, 'cpu')
    assert wrapper.learner is not None
    batch = apis.real_batch(cfg, 4, seed=0)
    assert len(batch['inputs']) == 4 and batch['inputs'][0].shape == (3, 32, 32)
    log_vars = model.train_step(batch, wrapper)
    assert math.isfinite(float(log_vars['loss']))


def test_missing_data_names_the_fix():
    cfg = apis.load_config(DGL, {'train_dataloader.dataset.data_root': '/does/not/exist'})
    with pytest.raises(RuntimeError, match='data_root=PATH, or .* --synthetic'):
        apis.real_batch(cfg, 2)


def test_input_size_and_preprocessor_fit():
    assert apis.input_size_of(apis.load_config(DGL)) == (32, 32)  # RandomCrop 32
    cfg = Config(dict(crop_size=(24, 40), model=dict(data_preprocessor=dict(size=(24, 40)))))
    assert apis.input_size_of(cfg) == (24, 40)
    apis.fit_preprocessor_size(cfg, (16, 16))
    assert cfg.model.data_preprocessor.size == (16, 16)
    assert apis.input_size_of(Config(dict(train_dataloader=dict(dataset=dict(
        pipeline=[dict(type='Resize', scale=8)]))))) is None
