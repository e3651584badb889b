"""Gradient routing of one training step: where each local gradient stops.

Modules run in order 0..K-1. A local loss read at module j's output h_j
trains modules ``reach..j`` (an independent head: ``reach = j``; a HiLo
cascade head over a window of k modules: ``reach = j - k + 1``). Heads run
on detached leaf copies of h_j, so what reaches the router is the gradient
g at h_j. The router carries g down the window through each module's kept
graph (one VJP per module, read at the module's input leaf) and, at the
module where it stops, adds it to what else stops there; that sum is
applied in one final VJP which also frees the module's graph, as soon as no
later loss can reach the module any more (``reach_back`` modules later).

The router knows nothing of heads, targets or optimizers; it only needs
tensors, so it is tested alone on toy modules.
"""
from typing import Callable, Dict, Optional

import torch

ModuleDone = Callable[[int], None]


class GradientRouter:
    """Routes the local gradients of one step through K modules.

    Args:
        num_modules: K.
        reach_back: how many earlier modules a loss may reach (k - 1 for
            cascade windows of k; 0 without windows: each module's graph is
            freed right after its own heads).
        on_module_done: called with m once module m's gradients are final
            (e.g. to launch their all-reduce while the forward goes on).
    """

    def __init__(self, num_modules: int, reach_back: int = 0,
                 on_module_done: Optional[ModuleDone] = None) -> None:
        if reach_back < 0:
            raise ValueError(f'reach_back must be >= 0, got {reach_back}')
        self.num_modules = num_modules
        self.reach_back = reach_back
        self.on_module_done = on_module_done
        self._out: Dict[int, torch.Tensor] = {}  # module -> its output, graph kept
        self._inp: Dict[int, torch.Tensor] = {}  # module -> its input leaf
        self._stop: Dict[int, torch.Tensor] = {}  # module -> gradient stopping there

    @property
    def pending(self) -> Dict[int, torch.Tensor]:
        """Outputs whose graphs are still kept (empty once a step is done)."""
        return self._out

    def output(self, j: int, h: torch.Tensor) -> None:
        """Module j produced ``h`` (with its graph)."""
        self._out[j] = h

    def route(self, j: int, g: Optional[torch.Tensor], reach: int) -> None:
        """``g`` is a loss's gradient at module j's output; it trains modules
        ``reach..j`` and stops at module ``reach``'s input."""
        if g is None:
            return
        reach = max(reach, 0)
        if reach < j - self.reach_back:
            raise ValueError(f'a loss at module {j} cannot reach module {reach}: the router '
                             f'keeps {self.reach_back} earlier modules')
        m = j
        while g is not None and m > reach:
            inp = self._inp[m]
            torch.autograd.backward(self._out[m], g, retain_graph=True)
            g, inp.grad = inp.grad, None
            m -= 1
        if g is not None:
            self._stop[m] = g if m not in self._stop else self._stop[m] + g

    def close(self, j: int) -> torch.Tensor:
        """Module j's losses are routed: free what nothing can reach any more
        and return the next module's input (a leaf needing its gradient when
        later losses reach back through it)."""
        nxt = self._out[j].detach()
        if j - self.reach_back >= 0:
            self._flush(j - self.reach_back)
        if self.reach_back > 0:
            nxt.requires_grad_()
            self._inp[j + 1] = nxt
        return nxt

    def input_grad(self, j: int) -> Optional[torch.Tensor]:
        """The gradient that reached module j's input leaf (the task loss's,
        after its backward) and resets it."""
        inp = self._inp.get(j)
        if inp is None or inp.grad is None:
            return None
        g, inp.grad = inp.grad, None
        return g

    def finish(self) -> None:
        """Apply everything left and free every graph."""
        for m in sorted(self._out):
            self._flush(m)
        self._inp.clear()
        self._stop.clear()

    def _flush(self, m: int) -> None:
        out = self._out.pop(m, None)
        g = self._stop.pop(m, None)
        if out is not None and g is not None and out.requires_grad:
            torch.autograd.backward(out, g)
        if m in self._inp:
            self._inp.pop(m).grad = None
        if self.on_module_done is not None:
            self.on_module_done(m)
