"""BN running statistics updated as often as the authors' loops update them.

The HPFF and MLAAN code runs a block once on the independent path and again
in every cascade window that contains it (``LocalPlan.passes``; ALGORITHMS.md
§5.2, §6.3); each run updates the block's BN running statistics with the
same batch statistics. mmlocal runs each block once per step. n updates with
momentum m, r <- (1 - m) r + m s, equal one update with momentum
1 - (1 - m)^n, so ``local.bn_updates='per-path'`` gives each block's BN layers
that momentum; the stem (run once by the authors: their y path starts from a
clone of its output) and everything outside the blocks keep theirs.
Gradients do not change (train-mode BN normalises with batch statistics);
the evaluation-time statistics do.
"""
from typing import List, Sequence, Tuple

import torch.nn as nn
from torch.nn.modules.batchnorm import _BatchNorm

from .block_lists import stem_of
from .config import LocalConfigError

def module_of_blocks(paths: Sequence[str], boundaries: Sequence[str]) -> List[Tuple[str, int]]:
    """(block path, local module index) of every block but the stem (the
    block list's mark, ``block_lists.BlockList``)."""
    cuts = [paths.index(b) for b in boundaries]
    return [(p, sum(c < i for c in cuts)) for i, p in enumerate(paths) if p != stem_of(paths)]


def per_path_momentum(model: nn.Module, paths: Sequence[str], boundaries: Sequence[str],
                      passes: Sequence[int]) -> List[Tuple[_BatchNorm, float]]:
    """Set momentum 1 - (1 - m)^n on the BN layers of the blocks of every
    module the authors' loop runs n > 1 times; returns (layer, old momentum)
    pairs so the change can be undone."""
    todo = []
    for path, m in module_of_blocks(paths, boundaries):
        n = passes[m]
        if n <= 1:
            continue
        for name, bn in model.get_submodule(path).named_modules():
            if not isinstance(bn, _BatchNorm):
                continue
            if bn.momentum is None:
                raise LocalConfigError(
                    f"local.bn_updates='per-path' updates the running statistics of "
                    f"{path}{'.' + name if name else ''} {n} times per step, as the authors' "
                    'loop does, by the equivalent momentum 1-(1-m)^n; this BN has '
                    'momentum=None (a cumulative average, which n equal updates do not map '
                    "to): give it a momentum (e.g. norm_cfg=dict(type='BN', momentum=0.1)) "
                    "or use bn_updates='once'")
            todo.append((bn, n))
    changes = [(bn, bn.momentum) for bn, _ in todo]
    for bn, n in todo:
        bn.momentum = 1. - (1. - bn.momentum) ** n
    return changes


def restore_momentum(changes: Sequence[Tuple[_BatchNorm, float]]) -> None:
    for bn, m in changes:
        bn.momentum = m
