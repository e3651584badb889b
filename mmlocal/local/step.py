"""One armed training step: the forward hooks and what they do.

``install_hooks`` puts PyTorch hooks on the task model; they act only while
a ``LocalStep`` is armed (inside ``train_step``) and are pass-throughs
otherwise, so val/test/predict run the untouched model:

* a pre-hook on the model reads the targets of a ``mode='loss'`` forward
  (after the data preprocessor);
* a hook on each boundary block runs that module's heads on detached leaf
  copies of its output, backpropagates their losses at once and hands the
  gradients to the ``GradientRouter``; the next module gets the output
  detached;
* tag hooks plus a hook on the backbone detach stage outputs that leave an
  earlier module (towards a neck or an E2E auxiliary head); output-only
  norms (``block_lists.OUTPUT_NORMS``) of an earlier module read their input
  detached, so they train with the task loss;
* token blocks called with their grid (``block(x, hw_shape)``: Swin, MiT)
  give it to their heads;
* with recomputation (``recompute.py``), hooks around every block check
  that a module's blocks run in sequence and record what to replay, and the
  start of each module applies the final VJPs of the modules closed before.
"""
import math
from dataclasses import dataclass
from typing import Callable, Dict, List, Mapping, Optional, Tuple, Union

import torch
import torch.nn as nn

from .block_lists import output_modules
from .head_runner import run_planned_head
from .loss_log import LocalLosses
from .isolation import TOO_FAR, finished_module
from .probe import hw_argument
from .plan import LocalPlan
from .recompute import Blocks, ModuleRecompute
from .router import GradientRouter, ModuleDone

Backward = Callable[[torch.Tensor], None]
_TAG = '_mmlocal_module'


def as_map(x: torch.Tensor, grid: Optional[Tuple[int, int]], extra: int) -> torch.Tensor:
    """(B, C, H, W) view of a boundary output; tokens (B, N, C) are reshaped
    to their patch grid (class/distillation tokens dropped)."""
    if x.dim() == 4:
        return x
    if x.dim() == 3 and grid is not None:
        b, _, c = x.shape
        return x[:, extra:, :].transpose(1, 2).reshape(b, c, grid[0], grid[1])
    raise ValueError(f'mmlocal cannot give a local head a feature of shape {tuple(x.shape)}')


@dataclass(frozen=True)
class StageRange:
    """The local modules ``first..last`` (inclusive) a step trains.

    The whole model is ``StageRange(0, K - 1)``; a pipeline stage
    (``engine/pipeline.py``) owns a range of consecutive modules: its input
    enters at module ``first`` and its output leaves after module ``last``.
    """
    first: int
    last: int

    def __post_init__(self) -> None:
        if not 0 <= self.first <= self.last:
            raise ValueError(f'a stage range needs 0 <= first <= last, got '
                             f'({self.first}, {self.last})')

    def __contains__(self, module: int) -> bool:
        return self.first <= module <= self.last


@dataclass(frozen=True)
class TokenGrid:
    """How token features map to their patch grid: the probe's patch grid
    at the probe's input size, and the class/distillation tokens before the
    patch tokens (``probe.py``)."""
    grid: Optional[Tuple[int, int]]
    size: Tuple[int, int]
    extra_tokens: int = 0


@dataclass(frozen=True)
class StepContext:
    """Everything a step is given, fixed for the learner's life.

    Args:
        plan: the plan (heads, windows, task-loss reach).
        heads: the head of each ``HeadPlan``, by its ``key``.
        grid: the token grid of ViT-like backbones.
        adapter: the target adapter, ``(inputs, data_samples, preprocessor)
            -> LocalTargets``.
        recompute: ``local.recompute`` (True, False or 'auto').
        recompute_blocks: the blocks of each module that may be recomputed.
        stage: the modules the step trains.
        check_finite: ``local.check_finite`` (``loss_log.py``).
        on_finish: what the owner does after each step (MLAAN EMA updates of
            the stage's heads, a warning about modules that kept graphs).
    """
    plan: LocalPlan
    heads: Mapping[str, nn.Module]
    grid: TokenGrid
    adapter: Callable
    recompute: Union[bool, str]
    recompute_blocks: Mapping[int, Blocks]
    stage: StageRange
    check_finite: bool
    on_finish: Callable[['LocalStep'], None]


class StepSlot:
    """The step the model's hooks act for: set while a step is armed
    (``LocalLearner.armed``), None otherwise (the hooks pass through)."""

    def __init__(self) -> None:
        self.step: Optional['LocalStep'] = None


class LocalStep:
    """State of one training step: targets, the router, the local losses.

    Created by ``LocalLearner.armed`` from a ``StepContext``; ``begin(targets)`` (the model's
    pre-hook, or the pipeline's stage forward) starts it at the stage's first
    module; ``finish()`` (after the task loss's backward) closes the last
    window and returns the losses to log.

    A step whose stage range (``context.stage``) ends before the last module
    keeps its last boundary's output, detached, as ``outgoing`` (the next
    stage's input); the task loss's window is closed only by the step that
    holds the last module.
    """

    def __init__(self, context: StepContext, backward: Backward,
                 on_module_done: Optional[ModuleDone] = None) -> None:
        self.context = context
        self.plan = context.plan
        self.stage = context.stage
        if self.stage.last >= self.plan.num_modules:
            raise ValueError(f'stage range {self.stage} exceeds the plan\'s '
                             f'{self.plan.num_modules} modules')
        #: the stage's output (its last boundary's, detached), when it is not the last
        self.outgoing: Optional[torch.Tensor] = None
        self.backward = backward
        mode = context.recompute
        last = self.plan.last_user()
        self.recompute: Optional[ModuleRecompute] = None
        # only modules a later loss reaches keep (or recompute) their graphs
        # (and of this stage after its first: the first's input comes from outside it)
        blocks = {m: b for m, b in context.recompute_blocks.items()
                  if last[m] > m and self.stage.first < m <= self.stage.last}
        if mode and self.plan.reach_back() > 0 and blocks:
            self.recompute = ModuleRecompute(blocks, strict=mode is True)
        self.router = GradientRouter(self.plan.num_modules, self.plan.reach_back(),
                                     on_module_done, self.recompute, last)
        self.targets = None
        self.cur = 0
        self.token_grid: Optional[Tuple[int, int]] = None
        #: (h, w) the current boundary block was called with (Swin, MiT tokens)
        self.boundary_grid: Optional[Tuple[int, int]] = None
        #: autograd sequence number of the last closed module's output, and of
        #: each block output's node -> its module (``detach_stale``)
        self.closed_seq: Optional[int] = None
        self.block_modules: Dict[int, int] = {}
        #: the first step's isolation check (``isolation.py``), set by the learner
        self.isolation = None
        # detached, on the device: read (and checked) once, after the iteration
        self.log_vars = LocalLosses(check_finite=context.check_finite)

    def begin(self, targets) -> None:
        """A training forward starts with these targets (``LocalTargets``)
        at the stage's first module."""
        self.targets = targets
        self.cur = self.stage.first

    @property
    def replaying(self) -> bool:
        """A module is being recomputed: the forward hooks stand aside."""
        return self.recompute is not None and self.recompute.replaying

    # ------------------------------------------------------------- per module
    def before_block(self, m: int, first: bool, path: str, args: tuple, kwargs: dict) -> None:
        """Block ``path`` of module m starts (recomputation only)."""
        if first and m > 0:
            self.router.flush_due()  # the previous module's graph is gone by now
        self.recompute.before_block(m, first, path, args, kwargs)

    def on_boundary(self, j: int, h: torch.Tensor) -> torch.Tensor:
        if self.cur != j:
            raise RuntimeError(f'local boundary {self.plan.boundaries[j]} ran out of order')
        if self.isolation is not None:
            self.isolation.module_output(j, h)
        if h.grad_fn is not None:
            self.closed_seq = h.grad_fn._sequence_nr()
            self.block_modules[self.closed_seq] = j
        self.router.output(j, h)
        # gradients that pass on first: the input-only VJP through module j then
        # runs before the gradients that stop at j exist
        for hp in sorted(self.plan.at(j), key=lambda hp: hp.reach):
            g = self._head_grad(self.context.heads[hp.key], h, hp)
            self.router.route(j, g, hp.reach)
        self.cur = j + 1
        nxt = self.router.close(j)
        if self.isolation is not None:
            self.isolation.module_input(j + 1, nxt)
        if j == self.stage.last:
            self.outgoing = nxt.detach()
        return nxt

    def _head_grad(self, head: nn.Module, h: torch.Tensor, hp) -> Optional[torch.Tensor]:
        """Run one head on a detached leaf copy of ``h``; return dL/dh."""
        leaf = h.detach().requires_grad_()
        grid, extra = self._grid(h), self.context.grid.extra_tokens
        if h.dim() == 3 and self.boundary_grid is not None:
            extra = h.shape[1] - grid[0] * grid[1]
        feat = as_map(leaf, grid, extra)
        out_size = tuple(self.targets.inputs.shape[-2:])
        losses = run_planned_head(hp, head, feat, self.targets, out_size, self.backward)
        boundary = self.plan.boundaries[hp.module]
        for k, v in losses.items():
            self.log_vars.add(f'local.{hp.key}.{k}', v, hp.module, boundary)
        return leaf.grad

    def _grid(self, h: torch.Tensor) -> Optional[Tuple[int, int]]:
        """Token grid of this forward: read from the patch embedding (which
        pads inputs that are not a multiple of the patch size)."""
        if h.dim() == 3 and self.boundary_grid is not None:
            return self.boundary_grid
        probe = self.context.grid
        if h.dim() != 3 or probe.grid is None:
            return None
        if self.token_grid is not None:
            return self.token_grid
        (gh0, gw0), (ph, pw) = probe.grid, probe.size
        ih, iw = self.targets.inputs.shape[-2:]
        return math.ceil(ih * gh0 / ph), math.ceil(iw * gw0 / pw)

    # ------------------------------------------------------------------ end
    def finish(self) -> LocalLosses:
        """After the task loss's backward: the task gradient at the last
        module's input continues down its window (weighted), then everything
        left is applied and every graph freed. Returns the local losses,
        unread (see ``loss_log.py``)."""
        last = self.plan.num_modules - 1
        if last in self.stage:
            g = self.router.input_grad(last)
            if g is not None and self.plan.task_weight_below > 0 \
                    and self.plan.task_reach < last:
                self.router.route(last - 1, g * self.plan.task_weight_below,
                                  self.plan.task_reach)
        self.router.finish()
        self.context.on_finish(self)
        self.targets = None
        return self.log_vars


def install_hooks(slot: StepSlot, boundaries: List[str], model: nn.Module,
                  backbone_path: str, block_paths: List[str]) -> List:
    """Hooks that act for the step in ``slot``; returns their handles."""
    backbone = model.get_submodule(backbone_path)

    def active() -> Optional[LocalStep]:
        step = slot.step
        if step is None or step.targets is None or step.replaying:
            return None
        return step

    def capture(module, args, kwargs):
        step = slot.step
        if step is None:
            return None
        mode = kwargs.get('mode', args[2] if len(args) > 2 else 'tensor')
        if mode != 'loss':
            return None
        inputs = kwargs.get('inputs', args[0] if args else None)
        samples = kwargs.get('data_samples', args[1] if len(args) > 1 else None)
        step.begin(step.context.adapter(inputs, samples,
                                        getattr(module, 'data_preprocessor', None)))
        return None

    def check_complete(module, args, output):
        step = active()
        if step is not None and step.cur != step.plan.num_modules - 1:
            raise RuntimeError(f'local boundary {step.plan.boundaries[step.cur]!r} was not '
                               'executed in the forward pass: check local.boundaries against '
                               'the model')
        if step is not None and step.isolation is not None:
            step.isolation.task_output(output)
        return None

    def boundary(j: int):
        def hook(module, args, kwargs, output):
            step = active()
            if step is None:
                return None
            if not isinstance(output, torch.Tensor):
                raise TypeError(f'boundary {step.plan.boundaries[j]} must return a tensor, '
                                f'got {type(output).__name__}')
            step.boundary_grid = hw_argument(args, kwargs)  # token blocks called with (h, w)
            return step.on_boundary(j, output)
        return hook

    def tag(module, args, output):
        step = active()
        if step is not None and isinstance(output, torch.Tensor):
            setattr(output, _TAG, step.cur)
            if output.grad_fn is not None:
                step.block_modules[output.grad_fn._sequence_nr()] = step.cur
        return None

    def detach_stale(module, args, output):
        """Stage outputs produced by a finished module leave it detached: a
        neck or E2E auxiliary head must not reach back. A stage output is a
        block's (tagged), or one the backbone made from a block output (a
        norm, a reshape of tokens: its graph reaches a block output of a
        finished module within a few nodes; further away, it is stale when
        made before the last closed module's output)."""
        step = active()
        if step is None:
            return None

        def fix(t):
            if not isinstance(t, torch.Tensor):
                return t
            m = getattr(t, _TAG, None)
            if m is None and t.grad_fn is not None:
                m = finished_module(t, step.block_modules, _TAG)
                if m is None or m == TOO_FAR:  # no block near: made while a finished module ran?
                    closed = step.closed_seq
                    m = step.cur - 1 if closed is not None and \
                        t.grad_fn._sequence_nr() <= closed else None
            return t.detach() if m is not None and m < step.cur else t

        if isinstance(output, torch.Tensor):
            return fix(output)
        if isinstance(output, (tuple, list)):
            return type(output)(fix(t) for t in output)
        return None

    def record_grid(module, args, output):
        """mmpretrain's PatchEmbed returns (tokens, (h, w))."""
        step = slot.step
        if step is not None and isinstance(output, tuple) and len(output) == 2 \
                and isinstance(output[1], (tuple, list)):
            step.token_grid = tuple(int(v) for v in output[1])
        return None

    def detach_input(module, args):
        """An output-only norm of a module that is not the last reads its
        input detached: it trains with the consumers of its output."""
        step = active()
        if step is not None and step.cur < step.plan.num_modules - 1:
            return tuple(a.detach() if isinstance(a, torch.Tensor) else a for a in args)
        return None

    def fresh_output(module, args, output):
        """... and its output belongs to the last module (not stale)."""
        step = active()
        if step is not None and isinstance(output, torch.Tensor) and output.grad_fn is not None:
            step.block_modules[output.grad_fn._sequence_nr()] = step.plan.num_modules - 1
        return None

    handles = [model.register_forward_pre_hook(capture, with_kwargs=True),
               model.register_forward_hook(check_complete)]
    outputs = output_modules(model, backbone_path)
    for p in outputs:
        handles += [model.get_submodule(p).register_forward_pre_hook(detach_input),
                    model.get_submodule(p).register_forward_hook(fresh_output)]
    for j, path in enumerate(boundaries):
        handles.append(model.get_submodule(path).register_forward_hook(boundary(j),
                                                                        with_kwargs=True))
    tagged = {id(m): m for n, m in backbone.named_children()
              if f'{backbone_path}.{n}' not in outputs}
    for p in block_paths:
        m = model.get_submodule(p)
        tagged[id(m)] = m
    handles += [m.register_forward_hook(tag) for m in tagged.values()]
    handles.append(backbone.register_forward_hook(detach_stale))
    patch_embed = getattr(backbone, 'patch_embed', None)
    if isinstance(patch_embed, nn.Module):
        handles.append(patch_embed.register_forward_hook(record_grid))
    handles += _recompute_hooks(slot, boundaries, model, block_paths)
    return handles


def _recompute_hooks(slot: StepSlot, boundaries: List[str], model: nn.Module,
                     block_paths: List[str]) -> List:
    """Hooks around every block for recomputation, registered after the
    boundary hooks so that a boundary block's output is the next module's
    input."""
    cuts = [block_paths.index(b) for b in boundaries]

    def recording() -> Optional[LocalStep]:
        step = slot.step
        if step is None or step.targets is None or step.recompute is None or step.replaying:
            return None
        return step

    def before(m: int, first: bool, path: str):
        def hook(module, args, kwargs):
            step = recording()
            if step is not None:
                step.before_block(m, first, path, args, kwargs)
            return None
        return hook

    def after(module, args, output):
        step = recording()
        if step is not None:
            step.recompute.after_block(output)
        return None

    handles = []
    for i, path in enumerate(block_paths):
        m = sum(c < i for c in cuts)
        first = i == 0 or (i - 1) in cuts
        block = model.get_submodule(path)
        handles.append(block.register_forward_pre_hook(before(m, first, path), with_kwargs=True))
        handles.append(block.register_forward_hook(after))
    return handles
