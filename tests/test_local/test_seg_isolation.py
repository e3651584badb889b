"""Gradient isolation of a real mmseg DeepLabV3 ``EncoderDecoder``.

The project's Cityscapes configs (ResNetV1c-101, ASPP decode head on layer4,
FCN auxiliary head on layer3) on two random crops of the bundled real frame.
Module 1 must get the gradient of its own local loss only: the decode head
and the FCN head (which reads the layer3 *stage* output, produced in the last
module) train with the last module, and the stage outputs of module 1
(layer1, layer2) never carry a gradient back. Crops are 32x64 to keep R101
cheap; dropout is off so that losses can be recomputed exactly.
"""
import contextlib
import copy
import os.path as osp

import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.dataset import pseudo_collate
from mmengine.model import revert_sync_batchnorm
from mmengine.registry import init_default_scope

from mmlocal.testing import repo_config as load  # configs/<name>
from mmlocal.local import LocalLearner
from mmlocal.testing import (assert_grad_close, build_local, features, grads_of, head_loss,
                                local_step_grads, module_param_names, task_loss)

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CITYSCAPES = osp.join(ROOT, 'tests', 'data', 'cityscapes')
CROP = (32, 64)
# the parts the issue names: they belong to the last module
LAST_PARTS = ('backbone.layer4.', 'decode_head.', 'auxiliary_head.')


@contextlib.contextmanager
def one_thread():
    """R101 on a shared 2-core machine: OpenMP threads spin against each
    other (10x slower steps); one thread is steady."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def build_segmentor(cfg: Config):
    from mmseg.registry import MODELS
    init_default_scope('mmseg')
    torch.manual_seed(0)
    model_cfg = copy.deepcopy(cfg.model)
    model_cfg.pretrained = None  # no download
    model_cfg.data_preprocessor.size = CROP  # pads to 512x1024 otherwise
    model = revert_sync_batchnorm(MODELS.build(model_cfg))
    model.init_weights()
    model.train()
    return model


def no_dropout(model) -> None:
    for m in list(model.modules()) + list(LocalLearner.of(model).modules()):
        if isinstance(m, torch.nn.modules.dropout._DropoutNd):
            m.p = 0.


def frame_batch(model, cfg: Config) -> dict:
    """Two random crops of the real Cityscapes frame, preprocessed."""
    from mmseg.registry import DATASETS
    init_default_scope('mmseg')
    ds_cfg = copy.deepcopy(cfg.train_dataloader.dataset)
    ds_cfg.data_root = CITYSCAPES
    ds_cfg.pipeline = [
        dict(type='LoadImageFromFile'), dict(type='LoadAnnotations'),
        dict(type='Resize', scale=(256, 128), keep_ratio=True),
        dict(type='RandomCrop', crop_size=CROP, cat_max_ratio=0.75),
        dict(type='PackSegInputs')]
    dataset = DATASETS.build(ds_cfg)
    np.random.seed(0)
    batch = pseudo_collate([dataset[0], dataset[0]])
    return model.data_preprocessor(batch, True)


def local_setup(name: str, **local_options):
    cfg = load(name)
    model = build_segmentor(cfg)
    local = copy.deepcopy(cfg.optim_wrapper.local)
    local.update(local_options)
    wrapper = build_local(model, local, lr=0.01)
    no_dropout(model)  # the local heads included
    return model, wrapper, frame_batch(model, cfg)


def perturb_last_parts(model) -> None:
    with torch.no_grad():
        for n, p in model.named_parameters():
            if n.startswith(LAST_PARTS):
                p.add_(torch.randn_like(p) * 0.1)


@pytest.mark.parametrize('boundary', ['backbone.layer3.12', 'backbone.layer4.0'])
def test_k2_modules_get_their_own_losses(boundary):
    """InfoPro K=2: module 1's gradients equal an independent recomputation
    of its local loss (psi + decoder on the boundary output); module 2 gets
    exactly the task loss with the graph cut at the boundary. After
    layer3[12] (the config, InfoPro's split) the FCN head reads a layer3
    output of module 2; after layer4[0] it reads a stage output of module 1,
    which must reach it detached while the FCN head still trains."""
    with one_thread():
        model, wrapper, data = local_setup('deeplabv3_r101_cityscapes_infopro_k2',
                                           boundaries=[boundary])
        learner = LocalLearner.of(model)
        assert learner.boundaries == [boundary]
        got = local_step_grads(model, wrapper, data)
        targets = learner.adapter(data['inputs'], data['data_samples'],
                                  model.data_preprocessor)
        assert targets.seg.shape[-2:] == CROP and (targets.seg != 255).any()

        first = module_param_names(model, learner.boundaries, 0)
        assert any(n.startswith('backbone.stem.') for n in first)
        assert any(n.startswith('backbone.layer3.12.') for n in first)
        h = features(model, data['inputs'], None, boundary)
        want = grads_of(head_loss(learner.heads['m1'], h, targets), model, first)
        for n in first:
            assert_grad_close(got[n], want[n], msg=n)

        last = module_param_names(model, learner.boundaries, 1)
        want = grads_of(task_loss(model, data['inputs'], data['data_samples'], boundary),
                        model, last)
        for n in last:
            assert_grad_close(got[n], want[n], msg=n)
        # the ASPP decode head and the FCN auxiliary head do train
        for part in ('decode_head.', 'auxiliary_head.', 'backbone.layer4.2.'):
            assert any(got[n].abs().sum() > 0 for n in last if n.startswith(part)), part


@pytest.mark.parametrize('name', ['deeplabv3_r101_cityscapes_infopro_k2',
                                  'deeplabv3_r101_cityscapes_infopro_hpff'])
def test_module1_does_not_depend_on_layer4_aspp_fcn(name):
    """Changing layer4, the ASPP head and the FCN head leaves module 1's
    gradients unchanged (HPFF: module 1 sees its own head and the cascade
    head of module 2 only), while end-to-end backprop would change them."""
    with one_thread():
        model, wrapper, data = local_setup(name)
        bounds = LocalLearner.of(model).boundaries
        first = module_param_names(model, bounds, 0)
        inputs, samples = data['inputs'], data['data_samples']
        before = local_step_grads(model, wrapper, data)
        e2e_before = grads_of(task_loss(model, inputs, samples, None), model, first)

        perturb_last_parts(model)
        after = local_step_grads(model, wrapper, data)
        e2e_after = grads_of(task_loss(model, inputs, samples, None), model, first)

        assert any(before[n].abs().sum() > 0 for n in first)
        for n in first:
            torch.testing.assert_close(after[n], before[n], msg=n)
        # the perturbation matters: the heads' own gradients and E2E's change
        for part in ('decode_head.', 'auxiliary_head.'):
            names = [n for n in after if n.startswith(part)]
            assert names and all(after[n].abs().sum() > 0 for n in names), part
            assert any(not torch.allclose(after[n], before[n]) for n in names), part
        assert any(not torch.allclose(e2e_after[n], e2e_before[n]) for n in first)
