"""Cutting a backbone into K gradient-isolated local modules.

A split is a list of K-1 *boundaries*: dotted paths of submodules (model
relative, e.g. ``backbone.layer3.0``) after which one local module ends.
Candidates are the stem (when the backbone has one) and every block but the
last, in execution order, so K ranges from 1 to the number of blocks (+1 with
a stem). ``BLOCK_LISTS`` (``block_lists.py``) says where a backbone's blocks
are; ``SPLITS`` holds what ``local.split`` accepts ('auto', 'blocks', 'memory',
'activations' and the papers'
presets, ALGORITHMS.md §1) and ``SPLIT_PRESETS`` the preset 'auto' takes for a
backbone class.

``split='memory'`` (registered by :mod:`mmlocal.analysis.peaks`) balances
the measured peak of a training step; the measurement needs data and heads,
so the optim wrapper constructor runs it before the learner is built and
hands over explicit boundaries. ``split='activations'`` balances the probe's
activation elements per block instead (no training step run).
"""
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Optional, Sequence

import torch.nn as nn

from mmlocal.registry import SPLIT_PRESETS, SPLITS
from .block_lists import block_paths, get_function, split_limit, stem_of  # noqa: F401
from .block_lists import lookup_by_class as _lookup_by_class


# --------------------------------------------------------------------- presets
def _stage_block(paths: Sequence[str], stage: int, block: int) -> Optional[str]:
    """``[stage, block]`` of the papers' tables -> path (stage 0 = stem);
    None when the backbone has no such block."""
    if stage == 0:
        return stem_of(paths)
    return next((p for p in paths if p.endswith(f'layer{stage}.{block}')), None)


# InfoPro/HPFF/MLAAN CIFAR splits, IP convention (ALGORITHMS.md §1.2). K=16 for
# ResNet-32 and K=55 for ResNet-110 count the stem as a module.
_R110_K32 = ([(1, b) for b in (1, 2, 4, 5, 7, 9, 11, 13, 14, 16, 17)] +
             [(2, b) for b in (1, 2, 4, 5, 7, 9, 11, 13, 14, 16, 17)] +
             [(3, b) for b in (1, 3, 4, 6, 7, 9, 11, 13, 15)])
_CIFAR_SPLITS: Dict[int, Dict[int, list]] = {
    32: {
        2: [(2, 1)],
        4: [(1, 2), (2, 1), (3, 0)],
        8: [(1, 0), (1, 2), (1, 4), (2, 1), (2, 3), (3, 0), (3, 2)],
        16: [(0, 0)] + [(s, b) for s in (1, 2, 3) for b in range(5)][:-1],
    },
    110: {
        2: [(2, 8)],
        4: [(1, 11), (2, 7), (3, 3)],
        8: [(1, 4), (1, 11), (2, 0), (2, 7), (2, 14), (3, 3), (3, 10)],
        16: [(1, 1), (1, 4), (1, 7), (1, 10), (1, 13), (1, 16), (2, 1), (2, 4), (2, 7),
             (2, 11), (2, 15), (3, 1), (3, 5), (3, 9), (3, 13)],
        32: _R110_K32,
        55: [(0, 0)] + [(s, b) for s in (1, 2, 3) for b in range(18)][:-1],
    },
}
_CIFAR_BALANCED = {110: {2: [(1, 14)], 3: [(1, 9), (2, 2)], 4: [(1, 6), (1, 14), (2, 8)]}}


@dataclass
class SplitRequest:
    """What a split function gets: the backbone, its block paths, K, and the
    measurements ``split='memory'`` balances (either may be None)."""
    backbone: nn.Module
    paths: List[str]
    k: int
    block_costs: Optional[Callable[[List[str]], List[float]]] = None
    #: paths -> :class:`mmlocal.analysis.peaks.PeakCosts` (typed ``Any``: the
    #: analysis sits above the runtime)
    peak_costs: Optional[Callable[[List[str]], Any]] = None

    @property
    def candidates(self) -> List[str]:
        return self.paths[:-1]


def _table(table: Optional[list], req: SplitRequest) -> Optional[List[str]]:
    """A preset's ``[stage, block]`` table as paths; None when the table or
    one of its blocks does not exist for this backbone."""
    if table is None:
        return None
    paths = [_stage_block(req.paths, s, b) for s, b in table]
    return None if None in paths else paths


@SPLIT_PRESETS.register_module(name='CifarResNet')
@SPLITS.register_module(name='infopro')
def infopro_split(req: SplitRequest) -> Optional[List[str]]:
    """The InfoPro/HPFF/MLAAN splits of the CIFAR ResNets."""
    return _table(_CIFAR_SPLITS.get(getattr(req.backbone, 'depth', None), {}).get(req.k), req)


@SPLITS.register_module(name='infopro-balanced')
def infopro_balanced_split(req: SplitRequest) -> Optional[List[str]]:
    """InfoPro* memory-balanced splits of ResNet-110 (CIFAR)."""
    return _table(_CIFAR_BALANCED.get(getattr(req.backbone, 'depth', None), {}).get(req.k), req)


@SPLITS.register_module(name='hpff-imagenet')
def hpff_imagenet_split(req: SplitRequest) -> Optional[List[str]]:
    """HPFF's ImageNet Bottleneck-ResNet end points (K=4, 8)."""
    return _table({4: [(3, 0), (3, 9), (3, 17)],
                   8: [(2, 0), (3, 1), (3, 5), (3, 9), (3, 13), (3, 17), (3, 21)]}.get(req.k), req)


# --------------------------------------------------------------------- balance
def balanced_indices(costs: Sequence[float], k: int) -> List[int]:
    """Indices i (boundary after candidate i) cutting ``costs`` into k parts
    of near-equal sum (the last part also holds the last block)."""
    total = float(sum(costs))
    cum, acc = [], 0.
    for c in costs:
        acc += c
        cum.append(acc)
    cuts: List[int] = []
    for j in range(1, k):
        goal = total * j / k
        lo = cuts[-1] + 1 if cuts else 0
        hi = len(costs) - 1 - (k - j)  # leave a block for each later module
        best = min(range(lo, hi + 1), key=lambda i: abs(cum[i] - goal))
        cuts.append(best)
    return cuts


@SPLITS.register_module(name='blocks')
def blocks_split(req: SplitRequest) -> List[str]:
    """Equal numbers of blocks (the stem counts as none)."""
    costs = [0. if p == stem_of(req.paths) else 1. for p in req.paths]
    return [req.candidates[i] for i in balanced_indices(costs, req.k)]


@SPLITS.register_module(name='activations')
def activations_split(req: SplitRequest) -> List[str]:
    """Equal activation elements per module (the probe's ``block_costs``)."""
    if req.block_costs is None:
        raise ValueError("split='activations' needs the probe's block_costs")
    return [req.candidates[i] for i in balanced_indices(req.block_costs(req.paths), req.k)]


@SPLITS.register_module(name='auto')
def auto_split(req: SplitRequest) -> List[str]:
    """The papers' preset for this backbone (``SPLIT_PRESETS``) when it has
    one for this K, else equal blocks."""
    preset = _lookup_by_class(SPLIT_PRESETS, req.backbone)
    result = preset(req) if preset is not None else None
    return result if result is not None else blocks_split(req)


# --------------------------------------------------------------------- resolve
def resolve_boundaries(model: nn.Module, num_modules: Optional[int] = None,
                       boundaries: Optional[Sequence[str]] = None,
                       split: str = 'auto', backbone_path: str = 'backbone',
                       block_costs: Optional[Callable[[List[str]], List[float]]] = None,
                       peak_costs: Optional[Callable[[List[str]], Any]] = None
                       ) -> List[str]:
    """The K-1 boundaries of a split, validated and in execution order.

    Args:
        num_modules: K. Ignored when ``boundaries`` is given.
        boundaries: explicit module paths (model-relative or backbone-relative).
        split: a name in ``SPLITS``: ``'auto'`` (the papers' preset when one
            exists, else blocks), ``'blocks'`` (equal number of blocks),
            ``'memory'`` (lowest largest module peak, needs ``peak_costs``),
            ``'activations'`` (equal ``block_costs``), or a preset name.
        block_costs: paths -> activation elements of each block.
        peak_costs: paths -> :class:`mmlocal.analysis.peaks.PeakCosts`.
    """
    paths = block_paths(model, backbone_path)
    candidates = paths[:-1]
    if boundaries is not None:
        resolved = []
        for b in boundaries:
            p = b if b in candidates else f'{backbone_path}.{b}'
            if p not in candidates:
                shown = ', '.join(candidates[:6] + (['...'] if len(candidates) > 6 else []) + candidates[-2:])
                raise ValueError(
                    f'unknown boundary {b!r}: a boundary must be a block of the '
                    f'backbone other than the last one ({len(candidates)} candidates: {shown})')
            resolved.append(p)
        order = [candidates.index(p) for p in resolved]
        if order != sorted(set(order)):
            raise ValueError(f'boundaries must be distinct and in execution order: {list(boundaries)}')
        return resolved
    if num_modules is None:
        raise ValueError('set local.num_modules (K) or local.boundaries')
    k = int(num_modules)
    max_k = len(candidates) + 1
    if not 1 <= k <= max_k:
        backbone = model.get_submodule(backbone_path)
        limit = split_limit(backbone)
        raise ValueError(
            f'num_modules={k} does not fit {type(backbone).__name__}: '
            f'it has {len(paths)} blocks (stem included), so K must be between 1 and {max_k}'
            + (f' ({limit})' if limit else ''))
    fn = get_function(SPLITS, split) if isinstance(split, str) else None
    if fn is None:
        names = sorted(SPLITS.module_dict)  # the names, for the message only
        raise ValueError(f'unknown split {split!r}: use one of {names}')
    if k == 1:
        return []
    req = SplitRequest(model.get_submodule(backbone_path), paths, k, block_costs, peak_costs)
    result = fn(req)
    if result is None:
        raise ValueError(f'split preset {split!r} has no K={k} for this backbone; '
                         "use split='blocks' or 'memory', or explicit boundaries")
    return result
