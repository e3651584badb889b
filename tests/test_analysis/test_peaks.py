"""Peak costs of a local step, the peak-balanced split, and split='memory'
and local.memory_budget at build time, checked against brute force and
against the allocator's peak of real training steps (CPU tracker)."""
import itertools
import random
import re

import pytest
import torch

from mmlocal.analysis import (PeakCosts, fewest_modules_within, measure_peak_costs,
                              module_peaks, optimizer_state_ratio, peak_balanced_indices,
                              predicted_peak)
from mmlocal.local import LocalLearner
from mmlocal.local.config import LocalConfig, LocalConfigError
from mmlocal.local.split import block_paths, resolve_boundaries
from mmlocal.testing import build_classifier, cifar_batch
from mmlocal.utils.memory import MB, PeakMemoryTracker


def _splits(n):
    """Every split of n blocks, as module ends (the last is n-1)."""
    for k in range(1, n + 1):
        for cuts in itertools.combinations(range(n - 1), k - 1):
            yield list(cuts) + [n - 1]


def _random_costs(rng, n, window, head_tensors=False):
    return PeakCosts([f'b{i}' for i in range(n)],
                     graph=[rng.uniform(1, 10) for _ in range(n)],
                     params=[rng.uniform(0, 2) for _ in range(n)],
                     head=[rng.uniform(0, 8) for _ in range(n - 1)],
                     tail=rng.uniform(0, 20), window=window,
                     head_tensors=[rng.uniform(0, 3) for _ in range(n - 1)]
                     if head_tensors else None,
                     static=rng.uniform(0, 5))


@pytest.mark.parametrize('window', [1, 2, 3])
def test_peak_balanced_split_is_the_minimax(window):
    rng = random.Random(window)
    for trial in range(5):
        n = rng.randint(5, 9)
        costs = _random_costs(rng, n, window)
        for k in range(1, min(n, 5) + 1):
            cuts = peak_balanced_indices(costs, k, tolerance=0.)
            assert len(cuts) == k - 1 and cuts == sorted(set(cuts))
            best = max(module_peaks(costs, cuts + [n - 1]))
            brute = min(max(module_peaks(costs, ends)) for ends in _splits(n)
                        if len(ends) == k)
            assert best == pytest.approx(brute)
            even = peak_balanced_indices(costs, k, tolerance=0.05)
            assert max(module_peaks(costs, even + [n - 1])) <= best * 1.05 + 1e-9


@pytest.mark.parametrize('window', [1, 2, 3])
def test_fewest_modules_within_a_budget_is_exact(window):
    """Without head tensors the budget's answer is exact: the smallest K any
    split fits with, and the lowest peak of all splits when none fits."""
    rng = random.Random(10 + window)
    for trial in range(6):
        n = rng.randint(4, 8)
        costs = _random_costs(rng, n, window)
        totals = {tuple(e): predicted_peak(costs, e) for e in _splits(n)}
        lowest = min(totals.values())
        for budget in (lowest * 0.99, lowest, lowest * 1.2, max(totals.values()) + 1):
            fit = fewest_modules_within(costs, budget)
            assert fit.lowest == pytest.approx(lowest)
            fitting = [e for e, t in totals.items() if t <= budget]
            if not fitting:
                assert fit.ends is None
                continue
            assert len(fit.ends) == min(len(e) for e in fitting)
            assert fit.peak == pytest.approx(totals[tuple(fit.ends)]) and fit.peak <= budget


def test_budget_with_head_tensors_is_sound():
    """Heads' own tensors add over modules: the answer still fits, and no
    split with fewer modules does."""
    rng = random.Random(7)
    for trial in range(8):
        n = rng.randint(4, 8)
        costs = _random_costs(rng, n, rng.randint(1, 3), head_tensors=True)
        totals = {tuple(e): predicted_peak(costs, e) for e in _splits(n)}
        budget = sorted(totals.values())[len(totals) // 3]
        fit = fewest_modules_within(costs, budget)
        assert fit.ends is not None and predicted_peak(costs, fit.ends) <= budget
        assert all(t > budget for e, t in totals.items() if len(e) < len(fit.ends))


def test_module_peaks_hold_the_window_grads_and_heads():
    costs = PeakCosts(['a', 'b', 'c', 'd'], graph=[8., 4., 2., 1.], params=[1., 1., 1., 1.],
                      head=[10., 20., 30.], tail=100., head_tensors=[1., 2., 3.], static=50.)
    # module 1 = a, 2 = b c, 3 = d: graphs + earlier gradients + heads / tail
    assert module_peaks(costs, [0, 2, 3]) == [8 + 10, 6 + 1 + 30, 1 + 3 + 100]
    assert predicted_peak(costs, [0, 2, 3]) == 50 + 1 + 3 + 104
    costs.window = 2  # HiLo k=2: the previous module's graph is alive too
    assert module_peaks(costs, [0, 2, 3]) == [8 + 10, 14 + 1 + 30, 7 + 3 + 100]


@pytest.mark.parametrize('optimizer, state', [
    (dict(type='SGD', lr=0.1), 0), (dict(type='SGD', lr=0.1, momentum=0.9), 1),
    (dict(type='Adam', lr=1e-3), 2), (dict(type='AdamW', lr=1e-3, amsgrad=True), 3)])
def test_optimizer_state_is_measured(optimizer, state):
    assert optimizer_state_ratio(optimizer) == state


def _real_step_peak(model, batch, optimizer=None, **local):
    """Allocator peak of one real local train_step (the second of two), with
    everything alive at its start (parameters, heads, optimizer state)."""
    wrapper = _build_local(model, local, optimizer)
    model.train_step(batch, wrapper)
    with PeakMemoryTracker('cpu', baseline=(model, wrapper)) as tracker:
        model.train_step(batch, wrapper)
    learner = LocalLearner.of(model)
    learner.remove()
    return tracker.stats.peak_bytes, learner.boundaries


def _build_local(model, local, optimizer=None):
    from mmengine.optim import build_optim_wrapper
    cfg = dict(type='LocalLearningOptimWrapper',
               constructor='LocalLearningOptimWrapperConstructor',
               optimizer=optimizer or dict(type='SGD', lr=0.1, momentum=0.9), local=local)
    return build_optim_wrapper(model, cfg)


@pytest.mark.parametrize('hilo', [None, dict(cascade=2)])
def test_measured_peaks_predict_the_real_step(hilo):
    """PeakCosts on a real CIFAR batch: the graph bytes are what the allocator
    holds after a training forward, the predicted largest module peak is the
    real step's peak within 25%, and the peak-balanced split's real peak is
    not above the equal-blocks split's."""
    model = build_classifier(depth=20)
    batch = cifar_batch(64)
    data = model.data_preprocessor(batch, True)
    local = dict(method=dict(type='InfoPro'), hilo=hilo)
    state = {k: v.clone() for k, v in model.state_dict().items()}
    rng = torch.get_rng_state()
    costs = measure_peak_costs(model, data['inputs'], data['data_samples'], local)
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in state.items())  # BN restored
    assert torch.equal(rng, torch.get_rng_state())  # the heads' init drew nothing
    assert all(p.grad is None for p in model.parameters())
    assert costs.window == (2 if hilo else 1) and len(costs.head) == len(costs.paths) - 1
    with PeakMemoryTracker('cpu') as tracker:
        tracker.reset_peak()
        out = model.backbone(data['inputs'])
    held = tracker.stats.end_increase_bytes
    del out
    assert sum(costs.graph) == pytest.approx(held, rel=0.1)

    k = 4
    cuts = peak_balanced_indices(costs, k)
    best = [costs.paths[i] for i in cuts]
    blocks = resolve_boundaries(model, k, split='blocks')
    local = {k: v for k, v in local.items() if v is not None}
    real_best, _ = _real_step_peak(model, batch, dict(type='SGD', lr=0.1),
                                   boundaries=best, **local)
    real_blocks, _ = _real_step_peak(model, batch, dict(type='SGD', lr=0.1),
                                     boundaries=blocks, **local)
    ends = cuts + [len(costs.paths) - 1]
    assert predicted_peak(costs, ends) == pytest.approx(real_best, rel=0.25)
    assert real_best <= real_blocks * 1.02


MEMORY_BATCH = dict(batch_size=32, input_size=(32, 32))


def test_split_memory_is_measured_at_build_time():
    """split='memory' through the constructor: a split of the step measured
    at memory_batch (its real peak against equal blocks: the test above),
    which draws no random numbers (the heads equal those built from the
    printed boundaries)."""
    local = dict(num_modules=3, split='memory', method=dict(type='DGL'),
                 memory_batch=MEMORY_BATCH)
    model = build_classifier(depth=20)
    torch.manual_seed(1)
    _build_local(model, local)
    learner = LocalLearner.of(model)
    chosen = learner.boundaries
    heads = {k: v.clone() for k, v in learner.state_dict().items()}
    learner.remove()
    paths = block_paths(model)
    assert len(chosen) == 2
    # early blocks hold 4x the activations of the last stage's: the measured
    # split cuts earlier than equal blocks
    blocks = resolve_boundaries(model, 3, split='blocks')
    assert [paths.index(b) for b in chosen] < [paths.index(b) for b in blocks]

    torch.manual_seed(1)
    _build_local(model, dict(boundaries=chosen, method=dict(type='DGL')))
    again = LocalLearner.of(model).state_dict()
    LocalLearner.of(model).remove()
    assert heads.keys() == again.keys()
    assert all(torch.equal(heads[k], again[k]) for k in heads)



def test_memory_budget_picks_the_smallest_k_that_fits():
    """A budget of 70% of E2E's real peak: the chosen split's real step
    peak (parameters, heads and SGD momentum included) is within it, and one
    module fewer is predicted not to fit."""
    batch = cifar_batch(MEMORY_BATCH['batch_size'])
    method = dict(type='DGL')
    model = build_classifier(depth=20)
    e2e, _ = _real_step_peak(model, batch, optimizer=dict(type='SGD', lr=0.1, momentum=0.9),
                             num_modules=1, method=method)
    budget = int(0.7 * e2e)
    real, chosen = _real_step_peak(model, batch, optimizer=dict(type='SGD', lr=0.1, momentum=0.9),
                                   memory_budget=budget, memory_batch=MEMORY_BATCH,
                                   method=method)
    k = len(chosen) + 1
    assert k > 1
    assert real <= budget * 1.05, (real / MB, budget / MB)
    # the prediction for K-1 modules is above the budget
    data = model.data_preprocessor(batch, True)
    costs = measure_peak_costs(model, data['inputs'], data['data_samples'],
                               dict(method=method), optimizer_state=1.)
    if k > 2:
        ends = peak_balanced_indices(costs, k - 1) + [len(costs.paths) - 1]
        assert predicted_peak(costs, ends) > budget


def test_memory_budget_refused_with_the_lowest_peak():
    model = build_classifier(depth=20)
    with pytest.raises(LocalConfigError, match='memory_budget=1.0 MB cannot be met') as err:
        _build_local(model, dict(memory_budget='1MB', memory_batch=MEMORY_BATCH,
                                 method=dict(type='DGL')))
    lowest = float(re.search(r'lowest predicted peak of any split is ([\d.]+) MB',
                             str(err.value)).group(1))
    # parameters alone (with their momentum) are above 1 MB, the answer above them
    params = sum(p.numel() * p.element_size() for p in model.parameters()) / MB
    assert lowest > 2 * params and 'Raise the budget' in str(err.value)


def test_measured_splits_need_their_batch():
    model = build_classifier(depth=20)
    with pytest.raises(LocalConfigError, match=r'memory_batch=dict\(batch_size='):
        _build_local(model, dict(num_modules=3, split='memory'))
    with pytest.raises(ValueError, match="split='activations'"):
        LocalLearner(model, dict(num_modules=3, split='memory'))  # no constructor: no step


@pytest.mark.parametrize('local, match', [
    (dict(memory_budget='20GB', num_modules=4), 'drop num_modules'),
    (dict(memory_budget=2**30, split='blocks'), "takes split='memory'"),
    (dict(memory_budget='twenty GB'), "size like '20GB'"),
    (dict(memory_budget=-5), 'must be >= 1'),
    (dict(memory_batch=dict(input_size=(32, 32))), 'batch_size is required'),
    (dict(memory_batch=dict(batch_size=2, input_size=32)), r'must be \(H, W\)'),
    (dict(memory_batch=dict(batch=2)), "Did you mean 'batch_size'"),
])
def test_memory_keys_are_checked(local, match):
    with pytest.raises(LocalConfigError, match=match):
        LocalConfig.parse(local)


def test_memory_budget_units():
    assert LocalConfig.parse(dict(memory_budget='20GB')).memory_budget == 20 * 2**30
    assert LocalConfig.parse(dict(memory_budget='512 MiB')).memory_budget == 512 * 2**20
    assert LocalConfig.parse(dict(memory_budget='1.5g')).memory_budget == int(1.5 * 2**30)
    assert LocalConfig.parse(dict(memory_budget=1000)).memory_budget == 1000
    assert LocalConfig.parse(dict(memory_budget='1MB')).split == 'memory'
