"""``clip_grad`` under local learning (``mmlocal/engine/local_clip.py``).

The regression of the FCOS leak (issue 25): mmdet's own FCOS config clips
gradients by their global norm (``clip_grad=dict(max_norm=35)``), which
scaled module 1's update by the detector head's gradient and turned it NaN
when the detector's loss was NaN. With ``scope='module'`` (the default) each
local module is clipped by its own norm: module 1's update does not depend
on the head; ``scope='global'`` keeps mmengine's coupling as an option.
The per-module clip is checked against ``torch.nn.utils.clip_grad_norm_``
applied to each module's gradients (recomputed without the wrapper).
"""
import copy

import pytest
import torch

from mmlocal.local import LocalLearner
from mmlocal.testing import (build_classifier, build_local, cifar_batch, local_step_grads,
                             module_param_names)
from mmlocal.testing.detection import frame_batch

FCOS = 'mmdet::fcos/fcos_r50-caffe_fpn_gn-head_1x_coco.py'
BOUNDARIES = ['layer2.3', 'layer3.2', 'layer3.5']  # the project's detector split


def fcos_update(scope=None, head_scale=None, nan_head=False):
    """Module 1's (layer2's) and the head's update after one train_step of
    mmdet's FCOS with its own optim_wrapper (SGD, clip_grad max_norm=35) and
    DGL on the project's boundaries; trainable parameters only (the caffe
    ResNet's BN is frozen)."""
    from mmengine.hub import get_config
    from mmengine.optim import build_optim_wrapper
    from mmengine.registry import init_default_scope
    from mmdet.registry import MODELS
    cfg = get_config(FCOS)
    assert cfg.optim_wrapper.clip_grad == dict(max_norm=35, norm_type=2)
    cfg.model.backbone.init_cfg = None
    cfg.model.bbox_head.num_classes = 2
    init_default_scope('mmdet')
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    model.init_weights()
    model.train()
    ow = copy.deepcopy(cfg.optim_wrapper)
    if scope is not None:
        ow.clip_grad['scope'] = scope
    ow.update(constructor='LocalLearningOptimWrapperConstructor',
              local=dict(boundaries=BOUNDARIES, method=dict(type='DGL')))
    wrapper = build_optim_wrapper(model, ow)
    with torch.no_grad():
        if head_scale is not None:
            for p in model.bbox_head.parameters():
                p.mul_(head_scale)
        if nan_head:
            model.bbox_head.conv_cls.weight.fill_(float('nan'))
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    torch.manual_seed(0)
    model.train_step(frame_batch(), wrapper)
    delta = {n: p.detach() - before[n] for n, p in model.named_parameters() if p.requires_grad}
    first = {n: d for n, d in delta.items() if n.startswith('backbone.layer2.')}
    head = {n: d for n, d in delta.items() if n.startswith('bbox_head.')}
    return first, head


def _max_diff(a, b):
    return max((a[n] - b[n]).abs().max().item() for n in a)


@pytest.mark.slow
def test_fcos_module1_update_does_not_depend_on_the_detector_head():
    base, base_head = fcos_update()
    scaled, scaled_head = fcos_update(head_scale=3.)
    assert _max_diff(base_head, scaled_head) > 0  # the head did change its own update
    assert _max_diff(base, scaled) == 0  # module 1's did not
    # mmengine's global clip, kept as an option, couples them (the leak)
    glob, _ = fcos_update(scope='global')
    glob_scaled, _ = fcos_update(scope='global', head_scale=3.)
    assert _max_diff(glob, glob_scaled) > 1e-6


@pytest.mark.slow
def test_fcos_nan_detector_loss_does_not_reach_module1():
    base, _ = fcos_update()
    nan_first, nan_head = fcos_update(nan_head=True)
    assert any(torch.isnan(d).any() for d in nan_head.values())  # the task module is NaN
    assert _max_diff(base, nan_first) == 0  # module 1 is untouched by it
    glob_first, _ = fcos_update(scope='global', nan_head=True)
    assert all(torch.isnan(d).all() for d in glob_first.values())  # the global clip spreads it


def test_each_module_is_clipped_by_its_own_norm():
    """SGD lr=1, no momentum: the update is minus the clipped gradient; it
    equals clip_grad_norm_ applied to each module (its blocks and its
    local head) and to the rest (the last module with neck and task head)."""
    max_norm = 0.05
    data_raw = cifar_batch(8)
    ref = build_classifier(depth=20)
    ref_wrapper = build_local(ref, dict(num_modules=4), lr=1.)
    learner = LocalLearner.of(ref)
    data = ref.data_preprocessor(copy.deepcopy(data_raw), True)
    torch.manual_seed(0)
    grads = local_step_grads(ref, ref_wrapper, data)
    heads = {f'local_learner.{n}': p.grad.clone() for n, p in learner.named_parameters()}
    groups = [module_param_names(ref, learner.boundaries, j) + [
        n for n in heads if n.startswith(f'local_learner.heads.m{j + 1}.')] for j in range(4)]
    assert sorted(sum(groups, [])) == sorted(list(grads) + list(heads))
    grads.update(heads)
    want = {}
    for names in groups:
        holders = [torch.nn.Parameter(torch.empty_like(grads[n])) for n in names]
        for h, n in zip(holders, names):
            h.grad = grads[n].clone()
        norm = torch.nn.utils.clip_grad_norm_(holders, max_norm)
        assert norm > max_norm  # every module is clipped here
        want.update((n, h.grad) for n, h in zip(names, holders))

    model = build_classifier(depth=20)
    wrapper = build_local(model, dict(num_modules=4), lr=1., clip_grad=dict(max_norm=max_norm))
    wrapper.optimizer.param_groups[0]['momentum'] = 0.
    assert wrapper.clip_scope == 'module'
    params = dict(model.named_parameters())
    params.update({f'local_learner.{n}': p
                   for n, p in LocalLearner.of(model).named_parameters()})
    before = {n: p.detach().clone() for n, p in params.items()}
    torch.manual_seed(0)
    model.train_step(copy.deepcopy(data_raw), wrapper)
    for n, g in want.items():
        torch.testing.assert_close(before[n] - params[n].detach(), g, rtol=1e-4, atol=1e-7,
                                   msg=n)
    from mmengine.logging import MessageHub
    logged = MessageHub.get_current_instance().get_scalar('train/grad_norm').current()
    total = torch.stack([g.norm() for g in grads.values()]).norm()
    assert logged == pytest.approx(total.item(), rel=1e-4)  # the global norm, as mmengine logs


@pytest.mark.parametrize('clip,match', [
    (dict(max_norm=1., scope='modul'), r"scope must be one of \('module', 'global'\)"),
    (dict(type='value', clip_value=1., scope='module'), "applies to type='norm' only"),
    (dict(max_norm=1., max_nrom=2.), "has no key 'max_nrom'"),
])
def test_bad_clip_settings_are_refused(clip, match):
    with pytest.raises(ValueError, match=match):
        build_local(build_classifier(depth=20), dict(num_modules=2), clip_grad=clip)
