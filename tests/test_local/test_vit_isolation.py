"""Gradient isolation of ViT-B/16 cut into K=12 local modules (one encoder
layer each), with and without HPFF, checked against an independent
recomputation of every loss: each from its own partial forward with the
graph cut where the loss must stop, tokens reshaped to their grid here (not
by the engine), PFF written as an explicit loop over patches.

The real ViT-B arch of ``configs/vit-b16_cifar10_dgl*_k12.py`` at 32x32
inputs (a 2x2 token grid), dropout off so recomputations are exact; the
config's Mixup stays on, so the local heads see soft labels."""
import os.path as osp
from typing import Dict

import pytest
import torch
from mmengine.config import Config

from mmlocal.testing import (assert_grad_close, build_local, cifar_batch, features, grads_of,
                             local_step_grads, task_loss)
from mmlocal.local import LocalLearner, build_learner
from mmlocal.local.head_runner import patch_slices

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
K = 12


def build_vit(config: str, **local_overrides):
    from mmengine.registry import init_default_scope
    from mmpretrain.registry import MODELS
    cfg = Config.fromfile(osp.join(ROOT, 'configs', config))
    init_default_scope('mmpretrain')
    cfg.model.backbone.update(img_size=32, drop_rate=0.)
    cfg.model.setdefault('data_preprocessor', cfg.data_preprocessor)
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    model.init_weights()
    # mmpretrain zero-initialises the ViT classifier, which would keep the task
    # loss from reaching the backbone at the first step: make it count
    for p in model.head.parameters():
        torch.nn.init.normal_(p, std=0.02)
    local = dict(cfg.optim_wrapper.local, **local_overrides)
    wrapper = build_local(model, local)
    return model, wrapper


def owners(model) -> Dict[str, int]:
    """Local module of every task-model parameter: patch embedding, class
    token, position embedding and layer 0 in module 0; layer j in module j;
    layer 11, the final norm and the classifier in the last module."""
    own = {}
    for n, _ in model.named_parameters():
        if n.startswith('local_learner.'):
            continue
        if n.startswith('backbone.layers.'):
            own[n] = int(n.split('.')[2])
        elif n.startswith(('backbone.ln1', 'backbone.ln2', 'head.', 'neck.')):
            own[n] = K - 1
        else:
            assert n.startswith('backbone.'), n
            own[n] = 0
    return own


def token_map(tokens: torch.Tensor, grid=(2, 2)) -> torch.Tensor:
    b, _, c = tokens.shape
    return tokens[:, 1:].transpose(1, 2).reshape(b, c, *grid)


def loss_of(head, h, targets, patches: int) -> torch.Tensor:
    out_size = tuple(targets.inputs.shape[-2:])
    feat = token_map(h)
    if patches == 1:
        return sum(head.loss(head(feat, out_size), targets).values())
    rows = patch_slices(feat.shape[-2], patches, out_size[0])
    cols = patch_slices(feat.shape[-1], patches, out_size[1])
    preds = [(r, head(feat[..., r[0], c[0]], (r[1].stop - r[1].start, c[1].stop - c[1].start)))
             for r in rows for c in cols]
    fused = {}
    for name in preds[0][1]:
        if head.FUSION.get(name, 'mean') == 'tile':
            fused[name] = torch.cat([torch.cat([p[name] for r, p in preds if r == row], -1)
                                     for row in rows], -2)
        else:
            fused[name] = torch.stack([p[name] for _, p in preds]).mean(0)
    return sum(head.loss(fused, targets).values())


def expected_grads(model, data, window: int, w_ind: float, w_cas: float, hilo: bool,
                   patches: int):
    learner = LocalLearner.of(model)
    bounds = learner.boundaries
    targets = learner.adapter(data['inputs'], data['data_samples'], model.data_preprocessor)
    own = owners(model)
    total = {n: torch.zeros_like(p) for n, p in model.named_parameters() if n in own}

    def cut(i):  # the boundary whose output feeds module i
        return bounds[i - 1] if i > 0 else None

    def add(loss, weight, modules):
        sel = [n for n in own if own[n] in modules]
        for n, g in grads_of(loss, model, sel).items():
            total[n] += weight * g

    for j in range(K - 1):
        key = f'm{j + 1}'
        if key in learner.heads:
            h = features(model, data['inputs'], cut(j), bounds[j])
            add(loss_of(learner.heads[key], h, targets, patches), w_ind, {j})
        if key in learner.cascade_heads:
            start = j - window + 1
            h = features(model, data['inputs'], cut(start), bounds[j])
            add(loss_of(learner.cascade_heads[key], h, targets, patches), w_cas,
                set(range(start, j + 1)))
    add(task_loss(model, data['inputs'], data['data_samples'], cut(K - 1)), 1.0, {K - 1})
    if hilo:
        start = K - window
        add(task_loss(model, data['inputs'], data['data_samples'], cut(start)), w_cas,
            set(range(start, K - 1)))
    return total, own


@pytest.mark.parametrize('config', ['vit-b16_cifar10_dgl_k12.py',
                                    'vit-b16_cifar10_dgl_hpff_k12.py'])
def test_vit_k12_gradient_isolation(config):
    model, wrapper = build_vit(config)
    learner = LocalLearner.of(model)
    assert learner.num_modules == K
    assert learner.boundaries == [f'backbone.layers.{i}' for i in range(K - 1)]
    hpff = 'hpff' in config
    if hpff:
        assert set(learner.heads) == {f'm{j}' for j in range(1, K)}
        assert set(learner.cascade_heads) == {f'm{j}' for j in range(2, K)}
        assert learner.cfg.pff.patches == 2
    else:
        assert len(learner.cascade_heads) == 0 and len(learner.heads) == K - 1
    data = model.data_preprocessor(cifar_batch(4), True)
    assert 'gt_score' in data['data_samples'][0]  # the config's Mixup is on
    got = local_step_grads(model, wrapper, data)
    hilo, pff = learner.cfg.hilo, learner.cfg.pff
    want, own = expected_grads(model, data, hilo.cascade if hilo else 1,
                               hilo.independent_weight if hilo else 1.,
                               hilo.cascade_weight if hilo else 0., hilo is not None,
                               pff.patches if pff else 1)
    for n in own:
        assert_grad_close(got[n], want[n], msg=n)
    # every module learned something, none reached an earlier one
    for j in range(K):
        assert any(got[n].abs().sum() > 0 for n in own if own[n] == j), f'module {j}'


def test_vit_infopro_default_heads_isolation():
    """InfoPro with the engine's default token heads (the InfoPro journal's
    psi: conv s2 + 3 Transformer layers; w: per-token MLP to the patch's
    pixels), a coarser split of the same ViT-B."""
    model, wrapper = build_vit('vit-b16_cifar10_dgl_k12.py', num_modules=3,
                               method=dict(type='InfoPro'))
    learner = LocalLearner.of(model)
    head = learner.heads['m1']
    assert type(head.classifier).__name__ == 'ViTAuxClassifier'
    assert type(head.decoder).__name__ == 'PatchReconDecoder'
    assert head.decoder.patch_size == 16
    bounds = learner.boundaries
    data = model.data_preprocessor(cifar_batch(4), True)
    got = local_step_grads(model, wrapper, data)
    targets = learner.adapter(data['inputs'], data['data_samples'], model.data_preprocessor)
    idx = [int(b.split('.')[-1]) for b in bounds]  # last layer of each local module
    own = owners(model)
    layer_module = lambda i: sum(i > c for c in idx)  # noqa: E731
    for j, b in enumerate(bounds):
        names = [n for n in own if (n.startswith('backbone.layers.')
                                    and layer_module(own[n]) == j)
                 or (j == 0 and own[n] == 0 and not n.startswith('backbone.layers.'))]
        h = features(model, data['inputs'], bounds[j - 1] if j else None, b)
        want = grads_of(loss_of(learner.heads[f'm{j + 1}'], h, targets, 1), model, names)
        for n in names:
            assert_grad_close(got[n], want[n], msg=n)


def test_vit_k_up_to_number_of_layers():
    """K runs up to one encoder layer per module; beyond, a clear error."""
    from mmengine.registry import init_default_scope
    from mmpretrain.registry import MODELS

    init_default_scope('mmpretrain')
    cfg = dict(type='ImageClassifier', data_preprocessor=dict(num_classes=10),
               backbone=dict(type='VisionTransformer', arch='deit-tiny', img_size=32),
               head=dict(type='VisionTransformerClsHead', num_classes=10, in_channels=192))
    method = dict(type='DGL', classifier=dict(type='TokenMLPClassifier'))
    learner = build_learner(MODELS.build(cfg), dict(num_modules=12, method=method))
    assert learner.boundaries[-1] == 'backbone.layers.10'
    with pytest.raises(ValueError, match='K must be between 1 and 12'):
        build_learner(MODELS.build(cfg), dict(num_modules=13, method=method))
