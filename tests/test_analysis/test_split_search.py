"""The split search on peak costs, against brute force over every split."""
import itertools
import random

import pytest

from mmlocal.analysis import (PeakCosts, fewest_modules_within, module_peaks,
                              peak_balanced_indices, predicted_peak)


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
