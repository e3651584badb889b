"""Cutting a backbone into K gradient-isolated local modules.

A split is a list of K-1 *boundaries*: dotted paths of submodules (model
relative, e.g. ``backbone.layer3.0``) after which one local module ends.
Candidates are the stem (when the backbone has one) and every block but the
last, in execution order, so K ranges from 1 to the number of blocks (+1 with
a stem). ``BLOCK_LISTS`` (``block_lists.py``) says where a backbone's blocks
are; ``SPLITS`` holds
what ``local.split`` accepts ('auto', 'blocks', 'memory' and the papers'
presets, ALGORITHMS.md §1) and ``SPLIT_PRESETS`` the preset 'auto' takes for a
backbone class.

``split='memory'`` balances what each module really holds at its peak during
a local step, measured by :func:`measure_peak_costs`: the graphs of its window
(HiLo keeps k modules' graphs alive), its local heads' step, the gradients of
the modules before it, and for the last module the neck, decode and auxiliary
heads and the task loss (:class:`PeakCosts`, :func:`module_peaks`). Without
those measurements it falls back to equal activation elements per module.
"""
from dataclasses import dataclass
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import torch
import torch.nn as nn

from mmlocal.registry import SPLIT_PRESETS, SPLITS
from .block_lists import block_paths, get_function, is_stem, split_limit  # noqa: F401
from .block_lists import lookup_by_class as _lookup_by_class


# ------------------------------------------------------------- peak costs
@dataclass
class PeakCosts:
    """What a local step holds, per block, measured on one batch (bytes).

    ``graph[i]``: tensors block i's forward saves for backward (its share of
    a module's graph); ``params[i]``: its parameters (their gradients stay
    until the optimizer step); ``head[i]``: peak increase of the local heads'
    forward and backward on block i's output (a boundary after block i);
    ``tail``: peak increase of what follows the backbone (neck, decode and
    auxiliary heads, task loss) forward and backward; ``window``: modules
    whose graphs are alive together (HiLo cascade k, else 1).
    """
    paths: List[str]
    graph: List[float]
    params: List[float]
    head: List[float]
    tail: float
    window: int = 1


def module_peaks(costs: PeakCosts, ends: Sequence[int]) -> List[float]:
    """Peak bytes (above parameters and optimizer state) of each module when
    module m ends at block ``ends[m]`` (the last entry is the last block).

    Module m holds the graphs of modules m-w+1..m, the gradients of the blocks
    before it and its heads (or, for the last module, the tail).
    """
    w = max(int(costs.window), 1)
    gp, pp = [0.], [0.]
    for g, p in zip(costs.graph, costs.params):
        gp.append(gp[-1] + g)
        pp.append(pp[-1] + p)
    starts = [-1] + list(ends)  # starts[m] = end of module m-1 (-1: none)
    peaks = []
    for m, end in enumerate(ends):
        first = starts[max(m - w + 1, 0)]  # end of the module before the window
        top = costs.tail if m == len(ends) - 1 else costs.head[end]
        peaks.append(gp[end + 1] - gp[first + 1] + pp[starts[m] + 1] + top)
    return peaks


def _minimax_ends(n: int, k: int, w: int, cost: Callable[[int, int, int, bool], float],
                  allowed: Optional[Callable[[int, int, int, bool], bool]] = None) -> Tuple[float, List[int]]:
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


def peak_balanced_indices(costs: PeakCosts, k: int, tolerance: float = 0.01) -> List[int]:
    """Boundary indices (into the candidates) of the split with the lowest
    largest module peak (:func:`module_peaks`). Among the splits within
    ``tolerance`` of that optimum, the one with the most even numbers of
    blocks per module (the peak often leaves some modules free)."""
    n = len(costs.paths)
    if not 1 <= k <= n:
        raise ValueError(f'cannot cut {n} blocks into {k} modules')
    w = max(int(costs.window), 1)
    gp, pp, bp = [0.], [0.], [0]
    for p, g, q in zip(costs.paths, costs.graph, costs.params):
        gp.append(gp[-1] + g)
        pp.append(pp[-1] + q)
        bp.append(bp[-1] + (0 if is_stem(p) else 1))

    def peak(first: int, prev: int, end: int, last: bool) -> float:
        top = costs.tail if last else costs.head[end]
        return gp[end + 1] - gp[first + 1] + pp[prev + 1] + top

    best, ends = _minimax_ends(n, k, w, peak)
    limit = best * (1 + tolerance)
    _, even = _minimax_ends(n, k, w, lambda first, prev, end, last: bp[end + 1] - bp[prev + 1],
                            lambda first, prev, end, last: peak(first, prev, end, last) <= limit)
    return (even or ends)[:-1]


def _saved_bytes_per_block(backbone: nn.Module, paths: Sequence[str], rel: Sequence[str],
                           x: torch.Tensor) -> Tuple[List[float], List[torch.Size]]:
    """Bytes autograd saves in each block during a training forward (unique
    storages, parameters excluded; the first block also gets what runs before
    it) and each block's output shape."""
    params = {p.untyped_storage().data_ptr() for p in backbone.parameters()}
    seen = set(params)
    current = [0]
    saved = [0.] * len(paths)
    shapes: List[Optional[torch.Size]] = [None] * len(paths)

    def pack(t: torch.Tensor):
        if t.device.type != 'meta':
            storage = t.untyped_storage()
            key = storage.data_ptr()
            if key and key not in seen:
                seen.add(key)
                saved[current[0]] += storage.nbytes()
        return t

    handles = []
    for i, p in enumerate(rel):
        m = backbone.get_submodule(p)

        def enter(mod, args, i=i):
            current[0] = i

        def leave(mod, args, out, i=i):
            if isinstance(out, torch.Tensor):
                shapes[i] = out.shape

        handles += [m.register_forward_pre_hook(enter), m.register_forward_hook(leave)]
    try:
        with torch.enable_grad(), torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
            out = backbone(x)
        del out
    finally:
        for h in handles:
            h.remove()
    missing = [p for p, s in zip(paths, shapes) if s is None]
    if missing:
        raise ValueError(f'blocks {missing[:3]} returned no tensor: give explicit local.boundaries')
    return saved, shapes


def measure_peak_costs(model: nn.Module, inputs: torch.Tensor, data_samples: Sequence,
                       method: dict = dict(type='DGL'), hilo: Optional[dict] = None,
                       pff: Optional[dict] = None, backbone_path: str = 'backbone',
                       task: Optional[str] = None) -> PeakCosts:
    """Measure :class:`PeakCosts` of ``model`` on one preprocessed batch.

    Run it at the training batch and crop size: activations grow with the
    pixels, parameter gradients do not, so a small probe misplaces the cuts.
    The heads are built as the learner builds them (``method``, ``hilo``,
    ``pff``) and their peaks read from the allocator
    (:class:`~mmlocal.utils.memory.PeakMemoryTracker`; CUDA counters on a GPU),
    once per distinct boundary shape. The model's BN statistics are restored.
    """
    from mmlocal.utils.memory import PeakMemoryTracker
    from .head_runner import run_head, run_head_patched
    from .methods import FeatureInfo, TaskInfo, build_method
    from .targets import build_target_adapter

    backbone = model.get_submodule(backbone_path)
    paths = block_paths(model, backbone_path)
    rel = [p[len(backbone_path) + 1:] for p in paths]
    device = inputs.device
    buffers = [(b, b.clone()) for b in model.buffers()]
    training = model.training
    model.train()
    try:
        graph, shapes = _saved_bytes_per_block(backbone, paths, rel, inputs)

        # parameters: a block's own; those outside every block go to the first
        in_blocks = set()
        params = []
        for p in rel:
            ps = list(backbone.get_submodule(p).parameters())
            in_blocks.update(id(t) for t in ps)
            params.append(float(sum(t.numel() * t.element_size() for t in ps)))
        params[0] += sum(t.numel() * t.element_size() for t in backbone.parameters()
                         if id(t) not in in_blocks)

        # local heads, once per boundary shape
        adapter = build_target_adapter(model, task)
        classes = adapter.num_classes(model)
        adapter.classes = classes
        targets = adapter(inputs, data_samples, getattr(model, 'data_preprocessor', None))
        info = TaskInfo(adapter.task, classes)
        main = build_method(method)
        hilo = dict(hilo or {})
        ind_method = build_method(hilo['independent_method']) \
            if hilo.get('independent_method') else main
        patches = int(dict(pff or {}).get('patches', 1)) if pff else 1
        apply_to = tuple(dict(pff or {}).get('apply_to', ('independent', 'cascade')))
        window = int(hilo.get('cascade', 2)) if hilo else 1
        out_size = tuple(inputs.shape[-2:])
        head_by_shape: Dict[torch.Size, float] = {}
        for shape in shapes[:-1]:
            if shape in head_by_shape:
                continue
            if len(shape) != 4:
                head_by_shape[shape] = 0.
                continue
            feat_info = FeatureInfo(shape[1], (shape[2], shape[3]),
                                    max(out_size[0] // shape[2], 1))
            runs = []
            if not hilo or hilo.get('independent', True):
                runs.append((ind_method, 'independent'))
            if hilo:
                runs.append((main, 'cascade'))
            heads = [(meth.build_head(feat_info, info, meth.loss_weights(0.)).to(device), kind)
                     for meth, kind in runs]
            feat = torch.randn(shape, device=device)
            with PeakMemoryTracker(device) as tracker:
                tracker.reset_peak()
                kept = []
                for head, kind in heads:
                    leaf = feat.detach().requires_grad_()
                    if patches > 1 and kind in apply_to:
                        run_head_patched(head, leaf, targets, out_size, 1., lambda l: l.backward(),
                                         patches)
                    else:
                        run_head(head, leaf, targets, out_size, 1., lambda l: l.backward())
                    kept.append(leaf.grad)  # the learner keeps it until the module's VJP
                del kept
            head_by_shape[shape] = float(tracker.stats.peak_increase_bytes)
            del heads
        head = [head_by_shape[s] for s in shapes[:-1]]

        # the tail: backbone without graph, its last output a leaf
        def no_grad_enter(mod, args):
            mod._mmlocal_grad = torch.is_grad_enabled()
            torch.set_grad_enabled(False)

        def detach_exit(mod, args, out):
            torch.set_grad_enabled(mod._mmlocal_grad)
            leaves = [t.detach() for t in (out if isinstance(out, (tuple, list)) else [out])]
            leaves[-1].requires_grad_()
            tracker.reset_peak()
            return type(out)(leaves) if isinstance(out, (tuple, list)) else leaves[0]

        handles = [backbone.register_forward_pre_hook(no_grad_enter),
                   backbone.register_forward_hook(detach_exit)]
        try:
            with PeakMemoryTracker(device) as tracker:
                losses = model(inputs, data_samples, mode='loss')
                loss, _ = model.parse_losses(losses)
                loss.backward()
                del losses, loss
        finally:
            for h in handles:
                h.remove()
        tail = float(tracker.stats.peak_increase_bytes)
        model.zero_grad(set_to_none=True)
    finally:
        with torch.no_grad():
            for b, saved in buffers:
                b.copy_(saved)
        model.train(training)
    return PeakCosts(paths, graph, params, head, tail, window)


# --------------------------------------------------------------------- presets
def _stage_block(paths: Sequence[str], stage: int, block: int) -> Optional[str]:
    """``[stage, block]`` of the papers' tables -> path (stage 0 = stem);
    None when the backbone has no such block."""
    if stage == 0:
        return next((p for p in paths if is_stem(p)), None)
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
    peak_costs: Optional[Callable[[List[str]], PeakCosts]] = None

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
    costs = [0. if is_stem(p) else 1. for p in req.paths]
    return [req.candidates[i] for i in balanced_indices(costs, req.k)]


@SPLITS.register_module(name='memory')
def memory_split(req: SplitRequest) -> List[str]:
    """The lowest largest module peak (measured :class:`PeakCosts`); without
    them, equal activation elements per module (``block_costs``)."""
    if req.peak_costs is not None:
        return [req.candidates[i] for i in peak_balanced_indices(req.peak_costs(req.paths), req.k)]
    if req.block_costs is None:
        raise ValueError("split='memory' needs measured costs (peak_costs or block_costs)")
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
                       peak_costs: Optional[Callable[[List[str]], PeakCosts]] = None
                       ) -> List[str]:
    """The K-1 boundaries of a split, validated and in execution order.

    Args:
        num_modules: K. Ignored when ``boundaries`` is given.
        boundaries: explicit module paths (model-relative or backbone-relative).
        split: a name in ``SPLITS``: ``'auto'`` (the papers' preset when one
            exists, else blocks), ``'blocks'`` (equal number of blocks),
            ``'memory'`` (lowest largest module peak with ``peak_costs``,
            else equal ``block_costs``), or a preset name.
        block_costs: paths -> activation elements of each block.
        peak_costs: paths -> :class:`PeakCosts` (see :func:`measure_peak_costs`).
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
