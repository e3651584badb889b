"""The gradient router alone, on toy modules: every routed loss trains
exactly the modules it reaches, as an independent autograd computation of
the same losses with the graph cut at the right inputs says."""
import pytest
import torch
import torch.nn as nn

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


def _routed(mods, x, heads, task_weight, task_reach, reach_back):
    done = []
    router = GradientRouter(len(mods), reach_back, on_module_done=done.append)
    k = len(mods)
    h = x
    for j in range(k - 1):
        out = mods[j](h)
        router.output(j, out)
        for jj, reach, weight in heads:
            if jj == j:
                leaf = out.detach().requires_grad_()
                (weight * _loss(j, leaf)).backward()
                router.route(j, leaf.grad, reach)
        h = router.close(j)
    mods[k - 1](h).sum().backward()
    g = router.input_grad(k - 1)
    if g is not None and task_reach < k - 1:
        router.route(k - 2, g * task_weight, task_reach)
    router.finish()
    assert router.pending == {}
    assert done == list(range(k - 1))
    return [p.grad.clone() if p.grad is not None else torch.zeros_like(p)
            for m in mods for p in m.parameters()]


@pytest.mark.parametrize('window', [1, 2, 3])
def test_routes_equal_independent_autograd(window):
    k = 5
    mods = _chain(k)
    x = torch.randn(4, 6)
    # HPFF shape: independent heads on every module, cascade heads over windows
    heads = [(j, j, 0.001) for j in range(k - 1)]
    heads += [(j, j - window + 1, 0.999) for j in range(window - 1, k - 1)] if window > 1 else []
    task_reach = max(k - window, 0)
    want = _expected(mods, x, heads, 0.999, task_reach)
    got = _routed(mods, x, heads, 0.999, task_reach, reach_back=window - 1)
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
