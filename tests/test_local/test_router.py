"""The gradient router alone, on toy modules: every routed loss trains
exactly the modules it reaches, as an independent autograd computation of
the same losses with the graph cut at the right inputs says."""
import pytest
import torch
import torch.nn as nn
from torch.utils.flop_counter import FlopCounterMode

from mmlocal.local import GradientRouter


def _chain(k: int, seed: int = 0) -> nn.ModuleList:
    torch.manual_seed(seed)
    return nn.ModuleList(nn.Sequential(nn.Linear(6, 6), nn.Tanh()) for _ in range(k))


def _loss(j: int, h: torch.Tensor) -> torch.Tensor:
    w = torch.linspace(-1, 1, h.shape[-1]) * (j + 1)
    return ((h * w).sum(-1) ** 2).mean()


def _expected(mods, x, heads, task_weight, task_reach):
    """Sum of every loss, each with the graph cut at its reach module's input."""
    params = [p for m in mods for p in m.parameters()]
    total = [torch.zeros_like(p) for p in params]
    k = len(mods)

    def run(loss_at, reach, weight):
        h = x
        for m in range(loss_at + 1):
            if m == reach:
                h = h.detach()
            h = mods[m](h)
        loss = weight * (_loss(loss_at, h) if loss_at < k - 1 else h.sum())
        grads = torch.autograd.grad(loss, params, allow_unused=True)
        for t, g in zip(total, grads):
            if g is not None:
                t += g

    for j, reach, weight in heads:
        run(j, reach, weight)
    run(k - 1, k - 1, 1.)  # the task loss trains the last module in full
    if task_reach < k - 1:  # and below it, weighted, cut at task_reach's input
        h = x
        for m in range(k - 1):
            if m == task_reach:
                h = h.detach()
            h = mods[m](h)
        last_in = h.detach().requires_grad_()
        g, = torch.autograd.grad(mods[k - 1](last_in).sum(), last_in)
        grads = torch.autograd.grad(h, params, grad_outputs=g * task_weight, allow_unused=True)
        for t, gg in zip(total, grads):
            if gg is not None:
                t += gg
    return total


class _Rerun:
    """Toy recomputation: modules 1..K-2 re-run from their input."""

    def __init__(self, mods):
        self.mods, self.calls = mods, []

    def can(self, m):
        return 0 < m < len(self.mods) - 1

    def __call__(self, m, x):
        self.calls.append(m)
        return self.mods[m](x)


def _routed(mods, x, heads, task_weight, task_reach, reach_back, recompute=None,
            last_reach=None):
    done = []
    router = GradientRouter(len(mods), reach_back, on_module_done=done.append,
                            recompute=recompute, last_reach=last_reach)
    k = len(mods)
    h = x
    for j in range(k - 1):
        router.flush_due()  # as the step does when the next module starts
        out = mods[j](h)
        router.output(j, out)
        for jj, reach, weight in heads:
            if jj == j:
                leaf = out.detach().requires_grad_()
                (weight * _loss(j, leaf)).backward()
                router.route(j, leaf.grad, reach)
        h = router.close(j)
        del out
        if recompute is not None and reach_back > 0 and last_reach is None:
            assert router.graphs == ([0] if j <= reach_back else [])
    mods[k - 1](h).sum().backward()
    g = router.input_grad(k - 1)
    if g is not None and task_reach < k - 1:
        router.route(k - 2, g * task_weight, task_reach)
    router.finish()
    assert router.pending == {}
    assert sorted(done) == list(range(k - 1))
    return [p.grad.clone() if p.grad is not None else torch.zeros_like(p)
            for m in mods for p in m.parameters()]


def _hpff(k, window):
    """HPFF shape: independent heads on every module, cascade heads over windows."""
    heads = [(j, j, 0.001) for j in range(k - 1)]
    heads += [(j, j - window + 1, 0.999) for j in range(window - 1, k - 1)] if window > 1 else []
    return heads, max(k - window, 0)


@pytest.mark.parametrize('recompute', [False, True])
@pytest.mark.parametrize('window', [1, 2, 3])
def test_routes_equal_independent_autograd(window, recompute):
    k = 5
    mods = _chain(k)
    x = torch.randn(4, 6)
    heads, task_reach = _hpff(k, window)
    want = _expected(mods, x, heads, 0.999, task_reach)
    rerun = _Rerun(mods) if recompute else None
    got = _routed(mods, x, heads, 0.999, task_reach, reach_back=window - 1, recompute=rerun)
    if recompute and window > 1:
        assert sorted(set(rerun.calls)) == [1, 2, 3]
    for i, (g, w) in enumerate(zip(got, want)):
        torch.testing.assert_close(g, w, rtol=1e-5, atol=1e-6 * w.abs().max().item() + 1e-9,
                                   msg=f'parameter {i}')


def test_loss_that_reaches_too_far_is_refused():
    mods = _chain(3)
    router = GradientRouter(3, reach_back=1)
    h = mods[0](torch.randn(2, 6))
    router.output(0, h)
    h = router.close(0)
    out = mods[1](h)
    router.output(1, out)
    router.output(2, mods[2](router.close(1)))
    with pytest.raises(ValueError, match='cannot reach module 0'):
        router.route(2, torch.ones(2, 6), 0)


def test_graphs_are_freed_as_windows_close():
    """Without windows a module's graph is gone right after its own heads;
    with a window of 2 exactly one earlier module is kept."""
    mods = _chain(4)
    for reach_back in (0, 1):
        router = GradientRouter(4, reach_back)
        h = torch.randn(2, 6)
        for j in range(3):
            out = mods[j](h)
            router.output(j, out)
            h = router.close(j)
            assert sorted(router.pending) == list(range(max(j - reach_back + 1, 0), j + 1))
        router.finish()
        assert router.pending == {}


@pytest.mark.parametrize('window,recompute', [(2, False), (3, False), (2, True)])
def test_one_parameter_vjp_per_module(window, recompute):
    """The work of a routed step, counted: a gradient passing through a
    module costs an input-only VJP, each module's parameters get one
    parameter-only VJP (its input gradient is not computed), and
    recomputation adds one forward per VJP of a module whose graph was
    dropped. Toy modules: one 6x6 matmul each (2*4*6*6 FLOPs per product)."""
    k, unit = 5, 2 * 4 * 6 * 6
    mods = _chain(k)
    heads, task_reach = _hpff(k, window)
    with FlopCounterMode(display=False) as counter:
        _routed(mods, torch.randn(4, 6), heads, 0.999, task_reach, window - 1,
                _Rerun(mods) if recompute else None)
    passes = sum(j - max(r, 0) for j, r, _ in heads) + (k - 2 - task_reach)  # input-only VJPs
    # forward, module 0's parameters (its input needs no gradient), modules 1..3: their
    # parameters, the task module: weight and input
    want = k + 1 + (k - 2) + passes + 2
    if recompute:  # every VJP of modules 1..3 but the first pass (on the live graph) re-runs them
        want += (k - 2) + (passes - (k - 2))
    assert counter.get_total_flops() == want * unit


def test_modules_no_later_loss_reaches_are_final_at_once():
    """InfoPro with the stem merged: only module 1's loss reaches back (to
    module 0). The other modules' gradients are final when they close: no
    graph kept, nothing recomputed, the same gradients."""
    k = 5
    mods = _chain(k)
    x = torch.randn(4, 6)
    heads = [(1, 0, 1.)] + [(j, j, 1.) for j in range(2, k - 1)]
    want = _expected(mods, x, heads, 0., k - 1)
    rerun = _Rerun(mods)
    got = _routed(mods, x, heads, 0., k - 1, reach_back=1, recompute=rerun,
                  last_reach=[1, 1, 2, 3, 4])
    assert rerun.calls == []
    for i, (g, w) in enumerate(zip(got, want)):
        torch.testing.assert_close(g, w, rtol=1e-5, atol=1e-7, msg=f'parameter {i}')
    router = GradientRouter(k, 1, last_reach=[1, 1, 2, 3, 4])
    h = x
    for j in range(3):
        router.output(j, mods[j](h))
        h = router.close(j)
        assert sorted(router.pending) == ([0] if j == 0 else [])
    with pytest.raises(ValueError, match='last_reach must give'):
        GradientRouter(k, 1, last_reach=[2, 1, 2, 3, 4])
