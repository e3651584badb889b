"""Recomputing a local module's forward from its kept input.

With HiLo or MLAAN windows a loss at module j reaches back k-1 modules, so
without recomputation the graphs of a whole window stay alive until the
window closes. With it, a module's graph is dropped once its own heads are
routed and only its input is kept; when a gradient must pass through the
module, or finally be applied to its parameters, its blocks are run again
from that input, as activation checkpointing does:

* the same RNG state (dropout and drop-path masks are replayed),
* the same autocast state (the final VJPs may run after the forward's
  autocast context has been left),
* BatchNorm running statistics untouched (they are updated once, by the
  original forward; the replay runs with them hidden, ``replay.py``).

A module is re-run block by block, so each of its blocks must be called with
one tensor, the previous block's output. ``ModuleRecompute`` checks this
during the original forward (identity of tensors, no arithmetic) and records
the state to replay; a module that breaks it keeps its graph
(``recompute='auto'``, with one warning) or is refused (``recompute=True``).
Module 0 (it may hold a stem that is no block) and the last module (the
task's own graph) are never recomputed.
"""
import contextlib
from typing import Dict, List, Optional, Sequence, Tuple

import torch
import torch.nn as nn

from .replay import replay, rng_state, set_rng_state

Blocks = Sequence[Tuple[str, nn.Module]]


def _autocast_state(device_type: str) -> Dict[str, Tuple[bool, torch.dtype]]:
    kinds = {device_type, 'cpu'}
    return {d: (torch.is_autocast_enabled(d), torch.get_autocast_dtype(d))
            for d in kinds if torch.amp.is_autocast_available(d)}


class ModuleRecompute:
    """One step's recomputation of local modules ``1..K-2``.

    Args:
        blocks: module m -> its blocks (path, module) in execution order, for
            every module that may be recomputed.
        strict: refuse (instead of keeping the graph of) a module whose
            blocks do not run in sequence.
    """

    def __init__(self, blocks: Dict[int, Blocks], strict: bool = False) -> None:
        self.blocks = blocks
        self.strict = strict
        self.replaying = False
        self.broken: Dict[int, str] = {}  # module -> why it keeps its graph
        self._state: Dict[int, tuple] = {}  # module -> (device, rng, autocast)
        self._prev: Optional[torch.Tensor] = None

    # ------------------------------------------------------ original forward
    def before_block(self, m: int, first: bool, path: str, args: tuple, kwargs: dict) -> None:
        """Block ``path`` of module m is about to run: check that it gets the
        previous block's output alone; at a module's first block record the
        state to replay."""
        if m not in self.blocks or m in self.broken:
            return
        x = args[0] if len(args) == 1 and not kwargs else None
        if not isinstance(x, torch.Tensor):
            self._break(m, f'block {path} is called with more than one input')
        elif x is not self._prev:
            self._break(m, f'block {path} does not receive the previous block\'s output '
                           '(something runs between two blocks)')
        elif first:
            self._state[m] = (x.device, rng_state(x.device), _autocast_state(x.device.type))

    def after_block(self, output) -> None:
        self._prev = output if isinstance(output, torch.Tensor) else None

    def _break(self, m: int, why: str) -> None:
        if self.strict:
            raise RuntimeError(f'local.recompute=True cannot re-run local module m{m + 1}: {why}. '
                               "Set local.recompute='auto' (such modules keep their graphs) "
                               'or False')
        self.broken[m] = why
        self._state.pop(m, None)

    def can(self, m: int) -> bool:
        """Whether module m's forward can be recomputed in this step."""
        return m in self._state and m not in self.broken

    # ---------------------------------------------------------------- replay
    def __call__(self, m: int, x: torch.Tensor) -> torch.Tensor:
        """Module m's output recomputed from its input ``x`` (with graph)."""
        device, rng, autocast = self._state[m]
        now = rng_state(device)
        set_rng_state(rng, device)
        self.replaying = True
        try:
            with contextlib.ExitStack() as stack:
                stack.enter_context(torch.enable_grad())
                for kind, (enabled, dtype) in autocast.items():
                    stack.enter_context(torch.autocast(kind, dtype=dtype, enabled=enabled))
                for _, block in self.blocks[m]:
                    x = replay(block, x)
            return x
        finally:
            self.replaying = False
            set_rng_state(now, device)


def module_blocks(paths: List[str], boundaries: Sequence[str],
                  model: nn.Module) -> Dict[int, Blocks]:
    """The blocks of each middle module 1..K-2 (between two boundaries)."""
    cuts = [paths.index(b) for b in boundaries]
    return {m: [(p, model.get_submodule(p)) for p in paths[cuts[m - 1] + 1:cuts[m] + 1]]
            for m in range(1, len(cuts))}
