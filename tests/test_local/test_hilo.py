"""HPFF hierarchical supervision: gradient routing of independent and cascade
losses, checked against an independent computation of every loss."""
import copy
import dataclasses

import pytest
import torch

from mmlocal.testing import (assert_grad_close, build_classifier, build_local, cifar_batch,
                             features, grads_of, head_loss, local_step_grads, module_param_names,
                             task_loss)
from mmlocal.local import LocalLearner
from mmlocal.utils.mmengine_adapter import run_forward


def expected_grads(model, data, k, w_ind, w_cas, first_independent=True):
    """Sum over every loss of its weight times its gradient, each loss
    recomputed with its own graph cut: the independent loss of module j cut
    at j's input; the cascade loss of window (j-k+1..j) cut at the window's
    input; the task loss cut at the last window's input."""
    learner = LocalLearner.of(model)
    bounds = learner.boundaries
    K = len(bounds) + 1
    targets = learner.adapter(data['inputs'], data['data_samples'], model.data_preprocessor)
    names = [n for n, _ in model.named_parameters() if not n.startswith('local_learner.')]
    total = {n: torch.zeros_like(p) for n, p in model.named_parameters()}
    owner = {}
    for j in range(K):
        for n in module_param_names(model, bounds, j):
            owner[n] = j

    def cut(i):  # the boundary whose output feeds module i
        return bounds[i - 1] if i > 0 else None

    def add(loss, weight, modules):
        sel = [n for n in names if owner.get(n) in modules]
        for n, g in grads_of(loss, model, sel).items():
            total[n] += weight * g

    for j in range(K - 1):
        key = f'm{j + 1}'
        if key in learner.heads:
            h = features(model, data['inputs'], cut(j), bounds[j])
            add(head_loss(learner.heads[key], h, targets), w_ind, {j})
        if key in learner.cascade_heads:
            start = j - k + 1
            h = features(model, data['inputs'], cut(start), bounds[j])
            add(head_loss(learner.cascade_heads[key], h, targets), w_cas,
                set(range(start, j + 1)))
    # the task loss: full weight on the last module, cascade weight below it
    loss = task_loss(model, data['inputs'], data['data_samples'], cut(K - 1))
    add(loss, 1.0, {K - 1})
    start = max(K - k, 0)
    loss = task_loss(model, data['inputs'], data['data_samples'], cut(start))
    add(loss, w_cas, set(range(start, K - 1)))
    return total, owner


@pytest.mark.parametrize('k,method', [(2, dict(type='DGL')), (3, dict(type='InfoPro')),
                                      (2, dict(type='PredSim'))])
def test_hilo_gradient_routing(k, method):
    model = build_classifier(depth=20)
    wrapper = build_local(model, dict(num_modules=5, method=method, probe_size=(32, 32),
                                      hilo=dict(cascade=k)))
    learner = LocalLearner.of(model)
    assert set(learner.heads) == {f'm{j}' for j in range(1, 5)}
    assert set(learner.cascade_heads) == {f'm{j}' for j in range(k, 5)}
    data = model.data_preprocessor(cifar_batch(8), True)
    got = local_step_grads(model, wrapper, data)
    want, owner = expected_grads(model, data, k, learner.cfg.hilo.independent_weight,
                                 learner.cfg.hilo.cascade_weight)
    for n, j in owner.items():
        assert_grad_close(got[n], want[n], msg=n)


def test_cascade_reaches_exactly_its_window():
    """With the independent path off and only one cascade head kept, exactly
    the modules of that window receive gradient (task loss removed)."""
    model = build_classifier(depth=20)
    wrapper = build_local(model, dict(num_modules=5, method=dict(type='DGL'),
                                      probe_size=(32, 32),
                                      hilo=dict(cascade=2, independent=False)))
    learner = LocalLearner.of(model)
    assert len(learner.heads) == 0
    # keep the window ending at m3 = modules 2,3 (1-based)
    learner.plan = dataclasses.replace(
        learner.plan, heads=tuple(h for h in learner.plan.heads if h.key == 'm3.cascade'))
    data = model.data_preprocessor(cifar_batch(8), True)
    wrapper.zero_grad()
    with wrapper.optim_context(model):
        run_forward(model, data, mode='loss')
    wrapper.finish_local_step()  # no task backward: only the cascade of window (2, 3)
    bounds = learner.boundaries
    for j in range(5):
        grads = [p.grad for n, p in model.named_parameters()
                 if n in module_param_names(model, bounds, j)]
        reached = any(g is not None and g.abs().sum() > 0 for g in grads)
        assert reached == (j in (1, 2)), f'module {j + 1}'


def test_authors_cifar_variant_first_module_has_no_independent_head():
    model = build_classifier(depth=20)
    build_local(model, dict(num_modules=4, method=dict(type='DGL'), probe_size=(32, 32),
                            hilo=dict(cascade=2, first_independent=False)))
    assert 'm1' not in LocalLearner.of(model).heads
    assert 'm2' in LocalLearner.of(model).heads


def test_k1_reduces_to_plain_method():
    """Window size 1: each cascade head stops at its own module; with the
    independent path off and weight 1 it is the plain method."""
    base = build_classifier(depth=20)
    hilo_model = copy.deepcopy(base)
    wp = build_local(base, dict(num_modules=4, method=dict(type='DGL'), probe_size=(32, 32)))
    wh = build_local(hilo_model, dict(num_modules=4, method=dict(type='DGL'),
                                      probe_size=(32, 32),
                                      hilo=dict(cascade=1, independent=False,
                                                cascade_weight=1.0)))
    LocalLearner.of(hilo_model).cascade_heads.load_state_dict(LocalLearner.of(base).heads.state_dict())
    data = base.data_preprocessor(cifar_batch(8), True)
    gp = local_step_grads(base, wp, data)
    gh = local_step_grads(hilo_model, wh, data)
    for n, g in gp.items():
        n2 = n.replace('local_learner.heads', 'local_learner.cascade_heads')
        torch.testing.assert_close(gh[n2], g, msg=n)


def test_hilo_k1_modules_equal_e2e():
    """K=1 with HiLo: no local head at all, exactly E2E (a window of 2 cannot
    span the single module: refused)."""
    model = build_classifier(depth=20)
    with pytest.raises(ValueError, match='between 1 and 1'):
        build_local(model, dict(num_modules=1, method=dict(type='DGL'), hilo=dict(cascade=2)))
    build_local(model, dict(num_modules=1, method=dict(type='DGL'), hilo=dict(cascade=1)))
    assert len(LocalLearner.of(model).heads) == len(LocalLearner.of(model).cascade_heads) == 0


def test_graphs_released_after_step():
    model = build_classifier(depth=20)
    wrapper = build_local(model, dict(num_modules=5, method=dict(type='DGL'),
                                      probe_size=(32, 32), hilo=dict(cascade=3)))
    data = model.data_preprocessor(cifar_batch(8), True)
    with wrapper.optim_context(model):
        run_forward(model, data, mode='loss')
        # windows of 3: the graphs of the last two local modules are still open
        step = LocalLearner.of(model).current_step
        assert sorted(step.router.pending) == [2, 3]
    wrapper.finish_local_step()
    assert step.router.pending == {} and step.router._inp == {}
