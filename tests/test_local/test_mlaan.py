"""MLAAN leap-augmented modules: copies, EMA arithmetic, isolation, resume."""
import copy

import pytest
import torch

from mmlocal.testing import (build_classifier, build_local, cifar_batch, local_step_grads,
                             module_param_names)
from mmlocal.local.leap import leap_blocks, leap_rule
from mmlocal.local.split import block_paths
from mmlocal.local import LocalLearner


def _mlaan(model, **kw):
    local = dict(num_modules=5, method=dict(type='DGL'), probe_size=(32, 32),
                 hilo=dict(cascade=3), mlaan=dict(momentum=0.9, **kw))
    return build_local(model, local)


def test_copies_start_from_live_weights_after_init():
    model = build_classifier(depth=20)
    wrapper = _mlaan(model)
    model.init_weights()  # the Runner initialises weights after building the optimizer
    heads = LocalLearner.of(model).leap_heads()
    assert heads and all(not bool(h.synced) for h in heads)
    with wrapper.optim_context(model):
        pass
    for h in heads:
        assert bool(h.synced)
        for copy_, src in zip(h.leap, h.sources):
            live = model.get_submodule(src).state_dict()
            for k, v in copy_.state_dict().items():
                torch.testing.assert_close(v, live[k])
        live0 = model.get_submodule(h.sources[0]).state_dict()
        for k, v in h.ema.state_dict().items():
            torch.testing.assert_close(v, live0[k])
        assert all(not p.requires_grad for p in h.ema.parameters())


@pytest.mark.parametrize('mode', ['all', 'last'])
def test_ema_several_steps_exact(mode):
    """E <- r E + (1 - r) live (r = 0.9 here) once per iteration, with the
    live weights of before the optimizer step; 'last' updates only the last
    module's EMA."""
    model = build_classifier(depth=20)
    wrapper = _mlaan(model, ema=mode)
    heads = LocalLearner.of(model).leap_heads()
    with wrapper.optim_context(model):
        pass
    ema = [[p.detach().clone() for p in h.ema.parameters()] for h in heads]
    for step in range(3):
        live = [[p.detach().clone() for p in model.get_submodule(h.sources[0]).parameters()]
                for h in heads]
        model.train_step(cifar_batch(8, seed=step), wrapper)
        for i in range(len(heads)):
            if mode == 'all' or i == len(heads) - 1:
                ema[i] = [0.9 * e + 0.1 * s for e, s in zip(ema[i], live[i])]
        for h, es in zip(heads, ema):
            for e, p in zip(es, h.ema.parameters()):
                torch.testing.assert_close(p, e)


@pytest.mark.parametrize('branch', ['frozen', 'trained'])
def test_ema_branch_frozen_or_trained(branch):
    """One real step from synced copies: 'frozen' EMA branches stay at their
    live block's weights (the last one's EMA update of equal weights changes
    nothing), 'trained' ones are moved by SGD (MLAAN's resnetInfoProbin.py)."""
    model = build_classifier(depth=20)
    wrapper = _mlaan(model, ema='last', ema_branch=branch)
    heads = LocalLearner.of(model).leap_heads()
    assert all(p.requires_grad == (branch == 'trained') for h in heads for p in h.ema.parameters())
    live = [[p.detach().clone() for p in model.get_submodule(h.sources[0]).parameters()]
            for h in heads]
    model.train_step(cifar_batch(8), wrapper)
    for h, ps in zip(heads, live):
        moved = max((a - b).abs().max().item() for a, b in zip(h.ema.parameters(), ps))
        if branch == 'trained':
            assert moved > 1e-4
        else:
            assert moved < 1e-6


def test_leap_isolation_from_live_later_blocks():
    """No loss of an earlier module reaches a live later block, and module
    1's gradients do not change when blocks beyond its window change."""
    model = build_classifier(depth=20)
    wrapper = _mlaan(model)
    data = model.data_preprocessor(cifar_batch(8), True)
    with wrapper.optim_context(model):
        pass
    bounds = LocalLearner.of(model).boundaries
    first = module_param_names(model, bounds, 0)
    g1 = local_step_grads(model, wrapper, data)
    # window of module 1 (k=3) = modules 1..3 (0-based 0..2) for the cascade
    # ending at module 3; change the live blocks of modules 4..5
    beyond = module_param_names(model, bounds, 3) + module_param_names(model, bounds, 4)
    with torch.no_grad():
        for n, p in model.named_parameters():
            if n in beyond:
                p.add_(torch.randn_like(p) * 0.1)
    g2 = local_step_grads(model, wrapper, data)
    for n in first:
        torch.testing.assert_close(g2[n], g1[n], msg=n)


def test_resume_restores_copies_and_ema(tmp_path):
    model = build_classifier(depth=20)
    wrapper = _mlaan(model)
    for s in range(2):
        model.train_step(cifar_batch(8, seed=s), wrapper)
    state = copy.deepcopy(model.state_dict())
    assert not any(k.startswith('local_learner.') for k in state)  # heads travel beside it
    opt_state = copy.deepcopy(wrapper.state_dict())
    fresh = build_classifier(depth=20, seed=5)
    fresh_wrapper = _mlaan(fresh)
    fresh.load_state_dict(state)
    fresh_wrapper.load_state_dict(opt_state)
    with torch.no_grad():
        for (n, a), (_, b) in zip(LocalLearner.of(model).named_buffers(),
                                  LocalLearner.of(fresh).named_buffers()):
            torch.testing.assert_close(a, b, msg=n)
    for h_old, h_new in zip(LocalLearner.of(model).leap_heads(), LocalLearner.of(fresh).leap_heads()):
        assert bool(h_new.synced)  # restored copies are not overwritten by the live ones
        for a, b in zip(h_old.ema.parameters(), h_new.ema.parameters()):
            torch.testing.assert_close(a, b)


def test_copy_tables():
    model = build_classifier(depth=32)
    paths = block_paths(model)
    from mmlocal.local.split import resolve_boundaries
    bounds = resolve_boundaries(model, 16)
    rows = leap_blocks(bounds, paths, depth=32)
    assert rows[1] == ['backbone.layer2.0', 'backbone.layer3.0', 'backbone.layer3.2',
                       'backbone.layer3.4']
    assert rows[-1] == ['backbone.layer3.4']
    # the rule: first block of each later stage, a middle one and the last
    assert leap_rule('backbone.layer1.1', paths) == [
        'backbone.layer2.0', 'backbone.layer3.0', 'backbone.layer3.2', 'backbone.layer3.4']
