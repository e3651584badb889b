"""Choosing a split from measured peak costs.

:func:`peak_balanced_indices`: the split of K modules with the lowest
largest module peak (an exact dynamic programme over the last w ends, w the
HiLo window), the most even one within a tolerance; it is ``split='memory'``,
registered here. :func:`fewest_modules_within`: the smallest K whose
predicted step peak fits a budget (an exact breadth-first search), or the
lowest peak any split reaches.
"""
import heapq
from dataclasses import dataclass
from typing import Callable, Dict, List, Optional, Sequence, Tuple

from mmlocal.local.split import stem_of
from mmlocal.registry import SPLITS
from .peaks import CostFn, PeakCosts, module_peaks, peak_fn, predicted_peak, prefix_sums


def _minimax_ends(n: int, k: int, w: int, cost: CostFn,
                  allowed: Optional[Callable[[int, int, int, bool], bool]] = None
                  ) -> Tuple[float, List[int]]:
    """Module ends e_1 < ... < e_k = n-1 minimising the largest
    ``cost(first, prev, end, last)`` (first: end of the module before the
    window of w modules, prev: end of the module before; -1 = none), over the
    modules that ``allowed`` admits. Exact dynamic programme whose state is
    the last w ends."""
    layer: Dict[Tuple[int, ...], Tuple[float, Tuple[int, ...]]] = {(-1,) * w: (0., ())}
    for m in range(k):
        last = m == k - 1
        nxt: Dict[Tuple[int, ...], Tuple[float, Tuple[int, ...]]] = {}
        for state, (worst, ends) in layer.items():
            prev = state[-1]
            lo, hi = (n - 1, n - 1) if last else (prev + 1, n - 1 - (k - 1 - m))
            for end in range(lo, hi + 1):
                if allowed is not None and not allowed(state[0], prev, end, last):
                    continue
                value = max(worst, cost(state[0], prev, end, last))
                key = state[1:] + (end,)
                if key not in nxt or value < nxt[key][0]:
                    nxt[key] = (value, ends + (end,))
        layer = nxt
    if not layer:
        return float('inf'), []
    value, ends = min(layer.values(), key=lambda v: v[0])
    return value, list(ends)


def _fewest_ends(n: int, w: int, cost: CostFn, limit: float) -> Optional[List[int]]:
    """The fewest module ends whose every module cost is <= ``limit``
    (breadth-first over the last w ends: a state reached with fewer modules
    dominates), or None."""
    start = (-1,) * w
    frontier: Dict[Tuple[int, ...], Tuple[int, ...]] = {start: ()}
    seen = {start}
    while frontier:
        nxt: Dict[Tuple[int, ...], Tuple[int, ...]] = {}
        for state, ends in frontier.items():
            for end in range(state[-1] + 1, n):
                last = end == n - 1
                if cost(state[0], state[-1], end, last) > limit:
                    continue
                if last:
                    return list(ends + (end,))
                key = state[1:] + (end,)
                if key not in seen:
                    seen.add(key)
                    nxt[key] = ends + (end,)
        frontier = nxt
    return None


def _lowest_ends(n: int, w: int, cost: CostFn) -> Tuple[float, List[int]]:
    """Module ends (any number of modules) with the lowest largest module
    cost: a bottleneck shortest path over the last w ends."""
    start = (-1,) * w
    heap = [(0., start, ())]
    best = {start: 0.}
    while heap:
        worst, state, ends = heapq.heappop(heap)
        if state[-1] == n - 1:
            return worst, list(ends)
        if worst > best.get(state, float('inf')):
            continue
        for end in range(state[-1] + 1, n):
            value = max(worst, cost(state[0], state[-1], end, end == n - 1))
            key = state[1:] + (end,)
            if value < best.get(key, float('inf')):
                best[key] = value
                heapq.heappush(heap, (value, key, ends + (end,)))
    return float('inf'), []


def peak_balanced_indices(costs: PeakCosts, k: int, tolerance: float = 0.01) -> List[int]:
    """Boundary indices (into the candidates) of the split with the lowest
    largest module peak (:func:`module_peaks`). Among the splits within
    ``tolerance`` of that optimum, the one with the most even numbers of
    blocks per module (the peak often leaves some modules free)."""
    n = len(costs.paths)
    if not 1 <= k <= n:
        raise ValueError(f'cannot cut {n} blocks into {k} modules')
    w = max(int(costs.window), 1)
    peak = peak_fn(costs)
    bp = prefix_sums([0. if p == stem_of(costs.paths) else 1. for p in costs.paths])
    best, ends = _minimax_ends(n, k, w, peak)
    limit = best * (1 + tolerance)
    _, even = _minimax_ends(n, k, w, lambda first, prev, end, last: bp[end + 1] - bp[prev + 1],
                            lambda first, prev, end, last: peak(first, prev, end, last) <= limit)
    return (even or ends)[:-1]


@dataclass(frozen=True)
class BudgetFit:
    """The answer to a memory budget: ``ends`` (module ends, the last is the
    last block) of the smallest K that fits and its ``peak``, or, when
    nothing fits (``ends`` None), the ``lowest`` peak any split reaches
    and that split's ``lowest_ends``."""
    ends: Optional[List[int]]
    peak: float
    lowest: float
    lowest_ends: List[int]


def fewest_modules_within(costs: PeakCosts, budget: float) -> BudgetFit:
    """The smallest K whose peak-balanced split's :func:`predicted_peak` is
    within ``budget`` bytes. The heads' own tensors add over modules, so the
    search starts at the K that fits without them (exact, breadth-first) and
    checks the predicted peak of each K from there."""
    n = len(costs.paths)
    w = max(int(costs.window), 1)
    peak = peak_fn(costs)
    lowest, lowest_ends = _lowest_ends(n, w, peak)
    lowest_total = predicted_peak(costs, lowest_ends)
    first = _fewest_ends(n, w, lambda *a: costs.static + peak(*a), budget)
    if first is not None:
        for k in range(len(first), n + 1):
            for tolerance in (0.01, 0.):  # the even split near the optimum, else the optimum
                ends = peak_balanced_indices(costs, k, tolerance) + [n - 1]
                total = predicted_peak(costs, ends)
                if total <= budget:
                    return BudgetFit(ends, total, lowest_total, lowest_ends)
                lowest_total = min(lowest_total, total)
    return BudgetFit(None, float('inf'), lowest_total, lowest_ends)


@SPLITS.register_module(name='memory')
def memory_split(req) -> List[str]:
    """The lowest largest module peak of a training step (the request's
    measured ``peak_costs``; the constructor measures them)."""
    if req.peak_costs is None:
        raise ValueError(
            "split='memory' balances the measured peak of a training step, which the optim "
            'wrapper constructor (LocalLearningOptimWrapperConstructor) measures before it '
            'builds the learner, at local.memory_batch=dict(batch_size=..., input_size=(H, W)); '
            "without it use split='activations' (equal activation memory of the blocks) or "
            'explicit local.boundaries')
    return [req.candidates[i] for i in peak_balanced_indices(req.peak_costs(req.paths), req.k)]


def compare_splits(costs: PeakCosts, splits: Dict[str, Sequence[str]]) -> Dict[str, dict]:
    """Module peaks and the predicted step peak of named splits (boundary
    lists), with the peak-balanced split of the same K as the first one
    added as ``'peak-balanced'`` (what ``split='memory'`` would choose)."""
    n = len(costs.paths)
    splits = dict(splits)
    if splits:
        k = len(next(iter(splits.values()))) + 1
        splits['peak-balanced'] = [costs.paths[i] for i in peak_balanced_indices(costs, k)]
    out = {}
    for name, bounds in splits.items():
        ends = [costs.paths.index(b) for b in bounds] + [n - 1]
        out[name] = dict(boundaries=list(bounds), module_peaks=module_peaks(costs, ends),
                         predicted_peak=predicted_peak(costs, ends))
    return out
