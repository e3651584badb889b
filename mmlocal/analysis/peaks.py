"""What each local module holds at the peak of a training step.

:func:`measure_peak_costs` runs one training step's parts on a batch at the
training size on the training device: per block, the bytes its forward saves
for backward and its parameters (their gradients stay until the optimizer
step); per boundary, the allocator peak of the local heads' forward and
backward, built by the plan's own ``build_head`` and run as the step runs
them; the peak of everything after the backbone (neck, decode and auxiliary
heads, task loss); and what the model keeps throughout (parameters, buffers,
the optimizer's state). :func:`module_peaks` and :func:`predicted_peak` add
them up for a split; ``split_search.py`` chooses splits from them.
"""
from dataclasses import dataclass, replace
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import torch
import torch.nn as nn

from mmlocal.local.config import LocalConfig
from mmlocal.local.head_runner import run_planned_head
from mmlocal.local.plan import HeadPlan, LocalPlan, build_head, plan_for
from mmlocal.local.probe import ProbeResult, probe_blocks
from mmlocal.local.split import block_paths
from mmlocal.local.targets import build_target_adapter
from mmlocal.structures import TaskInfo
from mmlocal.utils.memory import PeakMemoryTracker, tensor_bytes

#: the peak of one module: (first, prev, end, last) -> bytes (see ``peak_fn``)
CostFn = Callable[[int, int, int, bool], float]


# ---------------------------------------------------------------- the costs
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
    ``head_tensors[i]``: what the heads at block i's output keep for the
    whole step (parameters, buffers, gradients); ``static``: what the model
    keeps (parameters, buffers and optimizer state).
    """
    paths: List[str]
    graph: List[float]
    params: List[float]
    head: List[float]
    tail: float
    window: int = 1
    head_tensors: Optional[List[float]] = None
    static: float = 0.


def prefix_sums(values: Sequence[float]) -> List[float]:
    out = [0.]
    for v in values:
        out.append(out[-1] + v)
    return out


def peak_fn(costs: PeakCosts) -> CostFn:
    """``peak(first, prev, end, last)``: the peak of a module ending at block
    ``end`` whose window starts after block ``first`` (-1: none), the module
    before it ending at ``prev``; ``last``: it holds the tail."""
    gp, pp = prefix_sums(costs.graph), prefix_sums(costs.params)

    def peak(first: int, prev: int, end: int, last: bool) -> float:
        top = costs.tail if last else costs.head[end]
        return gp[end + 1] - gp[first + 1] + pp[prev + 1] + top
    return peak


def module_peaks(costs: PeakCosts, ends: Sequence[int]) -> List[float]:
    """Peak bytes (above parameters and optimizer state) of each module when
    module m ends at block ``ends[m]`` (the last entry is the last block).

    Module m holds the graphs of modules m-w+1..m, the gradients of the blocks
    before it and its heads (or, for the last module, the tail).
    """
    w = max(int(costs.window), 1)
    peak = peak_fn(costs)
    starts = [-1] + list(ends)  # starts[m] = end of module m-1 (-1: none)
    return [peak(starts[max(m - w + 1, 0)], starts[m], end, m == len(ends) - 1)
            for m, end in enumerate(ends)]


def predicted_peak(costs: PeakCosts, ends: Sequence[int]) -> float:
    """Bytes the whole step holds at its peak with module ends ``ends``: the
    model's and the split's heads' tensors and the largest module peak."""
    heads = sum(costs.head_tensors[e] for e in ends[:-1]) if costs.head_tensors else 0.
    return costs.static + heads + max(module_peaks(costs, ends))


# -------------------------------------------------------------- measurement
def _saved_bytes_per_block(backbone: nn.Module, rel: Sequence[str],
                           x: torch.Tensor) -> Tuple[List[float], List[bool]]:
    """Bytes autograd saves in each block during a training forward (unique
    storages, parameters excluded; the first block also gets what runs before
    it), and whether each block returned a tensor."""
    seen = {p.untyped_storage().data_ptr() for p in backbone.parameters()}
    current = [0]
    saved = [0.] * len(rel)
    returned = [False] * len(rel)

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
            returned[i] = isinstance(out, torch.Tensor)

        handles += [m.register_forward_pre_hook(enter), m.register_forward_hook(leave)]
    try:
        with torch.enable_grad(), torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
            out = backbone(x)
        del out
    finally:
        for h in handles:
            h.remove()
    return saved, returned


def _nbytes(tensors) -> float:
    return float(sum(t.numel() * t.element_size() for t in tensors))


def candidate_plan(cfg: LocalConfig, paths: Sequence[str], depth: Optional[int]) -> LocalPlan:
    """The plan of the split at every candidate: module i ends at block i,
    so ``plan.at(i)`` are the heads a module ending at block i carries (its
    cascade head once a window fits; MLAAN copies by the rule where the
    authors' tables do not cover every candidate). Built by the runtime's
    ``plan_for`` from the same ``LocalConfig``."""
    if cfg.mlaan is not None and cfg.mlaan.table == 'mlaan':
        cfg = replace(cfg, mlaan=replace(cfg.mlaan, table='auto'))
    return plan_for(list(paths[:-1]), paths, depth, cfg)


def _run_heads(hps: Sequence[HeadPlan], heads: Sequence[nn.Module], x: torch.Tensor,
               targets, out_size: Tuple[int, int]) -> float:
    """Peak increase of one boundary's heads, each on a detached leaf; the
    feature gradients stay until the module's parameter VJP."""
    with PeakMemoryTracker(x.device) as tracker:
        tracker.reset_peak()
        kept = []
        for hp, head in zip(hps, heads):
            leaf = x.detach().requires_grad_()
            run_planned_head(hp, head, leaf, targets, out_size, lambda l: l.backward())
            kept.append(leaf.grad)
        del kept
    return float(tracker.stats.peak_increase_bytes)


def _head_key(hp: HeadPlan) -> tuple:
    """What a head's memory depends on besides its feature: its kind,
    method, PFF, copies and which loss weights are on (a zero task weight
    skips InfoPro's classifier)."""
    return (hp.kind, repr(sorted(hp.method.items())), hp.pff, hp.patches, hp.pff_mode,
            len(hp.leap),
            hp.ema, tuple(sorted((k, v > 0) for k, v in hp.loss_weights.items())))


def _head_costs(model: nn.Module, cfg: LocalConfig, paths: Sequence[str], probe: ProbeResult,
                inputs: torch.Tensor, data_samples: Sequence) -> Tuple[List[float], List[float]]:
    """Peak and kept tensors of the heads at every candidate boundary,
    measured once per distinct (feature, heads)."""
    backbone = model.get_submodule(cfg.backbone)
    adapter = build_target_adapter(model, cfg.task)
    adapter.classes = cfg.num_classes or adapter.num_classes(model)
    task = TaskInfo(adapter.task, adapter.classes)
    targets = adapter(inputs, data_samples, getattr(model, 'data_preprocessor', None))
    plan = candidate_plan(cfg, paths, getattr(backbone, 'depth', None))
    out_size = tuple(inputs.shape[-2:])
    device = inputs.device
    measured: Dict[tuple, Tuple[float, float]] = {}
    peaks, kept = [], []
    for i, path in enumerate(paths[:-1]):
        hps = plan.at(i)
        feat = probe.feature(path)
        leaps = tuple(probe.feature(hp.leap[-1]) if hp.leap else None for hp in hps)
        key = (feat, leaps, tuple(_head_key(hp) for hp in hps))
        if key not in measured:
            heads = [build_head(hp, feat, task, model, lf).to(device)
                     for hp, lf in zip(hps, leaps)]
            x = torch.randn(inputs.shape[0], feat.channels, *feat.spatial, device=device)
            peak = _run_heads(hps, heads, x, targets, out_size) if hps else 0.
            measured[key] = (peak, float(tensor_bytes(heads)))
            del heads, x
        peaks.append(measured[key][0])
        kept.append(measured[key][1])
    return peaks, kept


def _tail_peak(model: nn.Module, backbone: nn.Module, inputs: torch.Tensor,
               data_samples: Sequence) -> float:
    """Peak increase of the model's loss forward and backward with the
    backbone run without graph (its last output a leaf)."""
    tracker = PeakMemoryTracker(inputs.device)
    grad_was: List[bool] = []

    def no_grad_enter(mod, args):
        grad_was.append(torch.is_grad_enabled())
        torch.set_grad_enabled(False)

    def detach_exit(mod, args, out):
        torch.set_grad_enabled(grad_was.pop())
        leaves = [t.detach() for t in (out if isinstance(out, (tuple, list)) else [out])]
        leaves[-1].requires_grad_()
        tracker.reset_peak()
        return type(out)(leaves) if isinstance(out, (tuple, list)) else leaves[0]

    handles = [backbone.register_forward_pre_hook(no_grad_enter),
               backbone.register_forward_hook(detach_exit)]
    try:
        with tracker:
            losses = model(inputs, data_samples, mode='loss')
            loss, _ = model.parse_losses(losses)
            loss.backward()
            del losses, loss
    finally:
        for h in handles:
            h.remove()
    return float(tracker.stats.peak_increase_bytes)


def measure_peak_costs(model: nn.Module, inputs: torch.Tensor, data_samples: Sequence,
                       cfg=None, optimizer_state: float = 0.) -> PeakCosts:
    """Measure :class:`PeakCosts` of ``model`` on one preprocessed batch.

    Run it at the training batch and crop size: activations grow with the
    pixels, parameter gradients do not, so a small probe misplaces the cuts.
    ``cfg`` is ``optim_wrapper.local`` (a dict or ``LocalConfig``): the
    heads are those of its plan, built by ``build_head``; their peaks read
    from the allocator (:class:`~mmlocal.utils.memory.PeakMemoryTracker`;
    CUDA counters on a GPU). ``optimizer_state``: optimizer state bytes per
    trainable parameter byte (:func:`optimizer_state_ratio`), for ``static``.
    The model's buffers, gradients, mode and the random generators are left
    as they were.
    """
    cfg = LocalConfig.parse(cfg if cfg is not None else {})
    backbone = model.get_submodule(cfg.backbone)
    paths = block_paths(model, cfg.backbone)
    rel = [p[len(cfg.backbone) + 1:] for p in paths]
    device = inputs.device
    buffers = [(b, b.clone()) for b in model.buffers()]
    grads = [(p, p.grad) for p in model.parameters()]
    training = model.training
    devices = [device] if device.type == 'cuda' else []
    with torch.random.fork_rng(devices=devices):
        model.train()
        try:
            graph, returned = _saved_bytes_per_block(backbone, rel, inputs)
            missing = [p for p, r in zip(paths, returned) if not r]
            if missing:
                raise ValueError(f'blocks {missing[:3]} returned no tensor: give explicit '
                                 'local.boundaries')
            probe = probe_blocks(model, cfg.backbone, paths, tuple(inputs.shape[-2:]))
            in_blocks = set()
            params = []
            for p in rel:  # a block's own; those outside every block go to the first
                ps = list(backbone.get_submodule(p).parameters())
                in_blocks.update(id(t) for t in ps)
                params.append(_nbytes(ps))
            params[0] += _nbytes(t for t in backbone.parameters() if id(t) not in in_blocks)
            head, head_tensors = _head_costs(model, cfg, paths, probe, inputs, data_samples)
            tail = _tail_peak(model, backbone, inputs, data_samples)
        finally:
            for p, g in grads:
                p.grad = g
            with torch.no_grad():
                for b, saved in buffers:
                    b.copy_(saved)
            model.train(training)
    trainable = _nbytes(p for p in model.parameters() if p.requires_grad)
    static = _nbytes(model.parameters()) + _nbytes(model.buffers()) + optimizer_state * trainable
    window = cfg.hilo.cascade if cfg.hilo is not None else 1
    return PeakCosts(paths, graph, params, head, tail, window, head_tensors, static)


def optimizer_state_ratio(optimizer_cfg: dict) -> float:
    """Bytes of state per parameter byte the optimizer of ``optimizer_cfg``
    keeps (SGD with momentum 1, Adam 2, plain SGD 0): measured on a
    parameter of four elements after one step."""
    from mmengine.registry import OPTIMIZERS
    p = nn.Parameter(torch.zeros(4))
    cfg = dict(optimizer_cfg)
    cfg['params'] = [p]
    optimizer = OPTIMIZERS.build(cfg)
    p.grad = torch.ones(4)
    optimizer.step()
    state = optimizer.state.get(p, {})
    return float(sum(v.numel() for v in state.values()
                     if isinstance(v, torch.Tensor) and v.shape == p.shape)) / p.numel()
