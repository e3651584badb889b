"""Cutting a backbone into K gradient-isolated local modules.

A split is a list of K-1 *boundaries*: dotted paths of submodules (model
relative, e.g. ``backbone.layer3.0``) after which one local module ends.
Candidates are the stem (when the backbone has one) and every block but the
last, in execution order, so K ranges from 1 to the number of blocks (+1 with
a stem). ``BLOCK_LISTS`` says where a backbone's blocks are; ``SPLIT_PRESETS``
reproduce the papers' splits (ALGORITHMS.md §1).
"""
from typing import Callable, Dict, List, Optional, Sequence

import torch.nn as nn
from mmengine.registry import Registry

from mmlocal.registry import BLOCK_LISTS

#: name -> fn(backbone, backbone_path, K, block_paths) -> boundaries or None
SPLIT_PRESETS = Registry('split preset')


# ----------------------------------------------------------------- block lists
@BLOCK_LISTS.register_module(name=['CifarResNet', 'ResNet', 'ResNetV1c', 'ResNetV1d',
                                   'ResNeXt', 'ResNet_CIFAR', 'ResNetV1b'])
def resnet_blocks(backbone: nn.Module) -> List[str]:
    """Residual blocks of every stage (``res_layers``), the stem first: its
    max-pool when it has one (ImageNet ResNets), else its ``stem`` module."""
    stem = [name for name in ('maxpool', 'stem')
            if isinstance(getattr(backbone, name, None), nn.Module)][:1]
    layers = getattr(backbone, 'res_layers', None) or [
        n for n, _ in backbone.named_children() if n.startswith('layer')]
    blocks = [f'{layer}.{i}' for layer in layers
              for i in range(len(getattr(backbone, layer)))]
    return stem + blocks


@BLOCK_LISTS.register_module(name=['VisionTransformer', 'DeiT', 'ViT'])
def vit_blocks(backbone: nn.Module) -> List[str]:
    """One encoder layer per block."""
    return [f'layers.{i}' for i in range(len(backbone.layers))]


def block_paths(model: nn.Module, backbone_path: str = 'backbone') -> List[str]:
    """Execution-ordered block paths of the model's backbone.

    The first entry may be the stem; the boundary candidates are all but the
    last entry.
    """
    backbone = model.get_submodule(backbone_path)
    for cls in type(backbone).__mro__:
        fn = BLOCK_LISTS.module_dict.get(cls.__name__)
        if fn is not None:
            break
    else:
        if hasattr(backbone, 'res_layers'):
            fn = resnet_blocks
        elif isinstance(getattr(backbone, 'layers', None), nn.ModuleList):
            fn = vit_blocks
        else:
            raise ValueError(
                f'mmlocal has no block list for {type(backbone).__name__}: give '
                'local.boundaries explicitly (dotted module paths) or register a '
                'function in mmlocal.registry.BLOCK_LISTS')
    return [f'{backbone_path}.{p}' for p in fn(backbone)]


def is_stem(path: str) -> bool:
    return path.endswith(('.stem', '.maxpool'))


# --------------------------------------------------------------------- presets
def _stage_block(paths: Sequence[str], stage: int, block: int) -> str:
    """``[stage, block]`` of the papers' tables -> path (stage 0 = stem)."""
    if stage == 0:
        return next(p for p in paths if is_stem(p))
    return next(p for p in paths if p.endswith(f'layer{stage}.{block}'))


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


@SPLIT_PRESETS.register_module(name='infopro')
def infopro_split(backbone, paths, k) -> Optional[List[str]]:
    """The InfoPro/HPFF/MLAAN splits of the CIFAR ResNets."""
    table = _CIFAR_SPLITS.get(getattr(backbone, 'depth', None), {}).get(k)
    return None if table is None else [_stage_block(paths, s, b) for s, b in table]


@SPLIT_PRESETS.register_module(name='infopro-balanced')
def infopro_balanced_split(backbone, paths, k) -> Optional[List[str]]:
    """InfoPro* memory-balanced splits of ResNet-110 (CIFAR)."""
    table = _CIFAR_BALANCED.get(getattr(backbone, 'depth', None), {}).get(k)
    return None if table is None else [_stage_block(paths, s, b) for s, b in table]


@SPLIT_PRESETS.register_module(name='hpff-imagenet')
def hpff_imagenet_split(backbone, paths, k) -> Optional[List[str]]:
    """HPFF's ImageNet Bottleneck-ResNet end points (K=4, 8)."""
    table = {4: [(3, 0), (3, 9), (3, 17)],
             8: [(2, 0), (3, 1), (3, 5), (3, 9), (3, 13), (3, 17), (3, 21)]}.get(k)
    return None if table is None else [_stage_block(paths, s, b) for s, b in table]


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


def resolve_boundaries(model: nn.Module, num_modules: Optional[int] = None,
                       boundaries: Optional[Sequence[str]] = None,
                       split: str = 'auto', backbone_path: str = 'backbone',
                       block_costs: Optional[Callable[[List[str]], List[float]]] = None
                       ) -> List[str]:
    """The K-1 boundaries of a split, validated and in execution order.

    Args:
        num_modules: K. Ignored when ``boundaries`` is given.
        boundaries: explicit module paths (model-relative or backbone-relative).
        split: ``'auto'`` (the papers' preset when one exists, else blocks),
            ``'blocks'`` (equal number of blocks), ``'memory'`` (equal measured
            activation memory, needs ``block_costs``), or a preset name.
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
        raise ValueError(
            f'num_modules={k} does not fit {type(model.get_submodule(backbone_path)).__name__}: '
            f'it has {len(paths)} blocks (stem included), so K must be between 1 and {max_k}')
    if k == 1:
        return []
    backbone = model.get_submodule(backbone_path)
    if split not in ('auto', 'blocks', 'memory'):
        if split not in SPLIT_PRESETS.module_dict:
            raise ValueError(f"unknown split {split!r}: use 'auto', 'blocks', 'memory' "
                             f'or a preset: {sorted(SPLIT_PRESETS.module_dict)}')
        result = SPLIT_PRESETS.module_dict[split](backbone, paths, k)
        if result is None:
            raise ValueError(f'split preset {split!r} has no K={k} for this backbone; '
                             "use split='blocks' or 'memory', or explicit boundaries")
        return result
    if split == 'auto':
        result = infopro_split(backbone, paths, k) if type(backbone).__name__ == 'CifarResNet' else None
        if result is not None:
            return result
    if split == 'memory':
        if block_costs is None:
            raise ValueError("split='memory' needs the activation costs of the blocks")
        costs = block_costs(paths)
    else:
        costs = [0. if is_stem(p) else 1. for p in paths]
    return [candidates[i] for i in balanced_indices(costs, k)]
