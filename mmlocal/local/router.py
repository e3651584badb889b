"""Gradient routing of one training step: where each local gradient stops.

Modules run in order 0..K-1. A local loss read at module j's output h_j
trains modules ``reach..j`` (an independent head: ``reach = j``; a HiLo
cascade head over a window of k modules: ``reach = j - k + 1``). Heads run
on detached leaf copies of h_j, so what reaches the router is the gradient
g at h_j.

Each module's parameters get one VJP per step. By linearity, the parameter
gradient of module m is the VJP of the *sum* of every gradient that arrives
at h_m, whether it stops at m or passes on; so a gradient passing through m
is carried down by an input-only VJP (no parameter gradients), and is added
to what stops at m. That sum is applied in one final parameter-only VJP (no
input gradient) once no later loss can reach m any more (``reach_back``
modules later), which also frees m's graph.

With a ``recompute`` (``recompute.py``) a module's graph is dropped once its
own heads are routed and only its input is kept; the VJPs through it re-run
its forward from that input. The final VJP of a module is then deferred to
``flush_due()`` (the step calls it when the next module starts), so that the
graph of the module just closed is gone when an earlier one is recomputed.

The router knows nothing of heads, targets or optimizers; it only needs
tensors, so it is tested alone on toy modules.
"""
from typing import Callable, Dict, Iterable, Iterator, List, Optional, Sequence, Tuple

import torch

ModuleDone = Callable[[int], None]
#: (module m, its input) -> its output, recomputed with graph; ``can(m)`` says if possible
Recompute = Callable[[int, torch.Tensor], torch.Tensor]


def reached_leaves(roots: Iterable) -> Iterator[Tuple[object, torch.Tensor]]:
    """(AccumulateGrad node, its leaf) of every leaf the graphs of the
    autograd nodes ``roots`` reach, each node visited once."""
    seen, stack = set(), list(roots)
    while stack:
        fn = stack.pop()
        if fn is None or fn in seen:
            continue
        seen.add(fn)
        var = getattr(fn, 'variable', None)
        if var is not None:
            yield fn, var
            continue
        stack.extend(f for f, _ in fn.next_functions)


def graph_leaves(out: torch.Tensor, exclude: torch.Tensor) -> List[torch.Tensor]:
    """Leaves requiring grad that ``out``'s graph reaches, ``exclude`` left
    out: the parameters of a module whose input is ``exclude``."""
    leaves = {id(var): var for _, var in reached_leaves([out.grad_fn])
              if var is not exclude and var.requires_grad}
    return list(leaves.values())


class GradientRouter:
    """Routes the local gradients of one step through K modules.

    Args:
        num_modules: K.
        reach_back: how many earlier modules a loss may reach (k - 1 for
            cascade windows of k; 0 without windows: each module's graph is
            freed right after its own heads).
        on_module_done: called with m once module m's gradients are final
            (e.g. to launch their all-reduce while the forward goes on).
        recompute: re-runs module m from its input; needs ``can(m)``. None:
            every graph of a window is kept.
        last_reach: per module m, the last module whose losses reach m
            (``m`` when none after it does: its gradients are final when it
            closes, it keeps no graph and is never recomputed). Default
            ``m + reach_back``: every window as long as the longest.
    """

    def __init__(self, num_modules: int, reach_back: int = 0,
                 on_module_done: Optional[ModuleDone] = None,
                 recompute: Optional[Recompute] = None,
                 last_reach: Optional[Sequence[int]] = None) -> None:
        if reach_back < 0:
            raise ValueError(f'reach_back must be >= 0, got {reach_back}')
        self.num_modules = num_modules
        self.reach_back = reach_back
        self.on_module_done = on_module_done
        self.recompute = recompute if reach_back > 0 else None
        if last_reach is None:
            last_reach = [m + reach_back for m in range(num_modules)]
        if len(last_reach) != num_modules or any(
                not m <= r <= m + reach_back for m, r in enumerate(last_reach)):
            raise ValueError(f'last_reach must give each of the {num_modules} modules m a '
                             f'module in m..m+{reach_back}, got {list(last_reach)}')
        self.last_reach = list(last_reach)
        self._due_at: Dict[int, List[int]] = {}  # module j -> modules final once j closes
        for m, r in enumerate(self.last_reach):
            self._due_at.setdefault(r, []).append(m)
        self._out: Dict[int, Optional[torch.Tensor]] = {}  # module -> output (None: dropped)
        self._inp: Dict[int, torch.Tensor] = {}  # module -> its input leaf
        self._grad: Dict[int, torch.Tensor] = {}  # module -> sum of gradients at its output
        self._due: List[int] = []  # modules whose final VJP waits for flush_due()

    @property
    def pending(self) -> Dict[int, Optional[torch.Tensor]]:
        """Modules whose gradients are not applied yet, with their kept
        outputs (None where the graph was dropped for recomputation); empty
        once a step is done."""
        return self._out

    @property
    def graphs(self) -> List[int]:
        """Modules whose graphs are kept."""
        return sorted(m for m, out in self._out.items() if out is not None)

    def output(self, j: int, h: torch.Tensor) -> None:
        """Module j produced ``h`` (with its graph)."""
        self._out[j] = h

    def route(self, j: int, g: Optional[torch.Tensor], reach: int) -> None:
        """``g`` is a loss's gradient at module j's output; it trains modules
        ``reach..j`` and stops at module ``reach``'s input."""
        if g is None:
            return
        reach = max(reach, 0)
        if reach < j and self.last_reach[reach] < j:
            raise ValueError(f'a loss at module {j} cannot reach module {reach}: the router '
                             f'applies its gradients once module {self.last_reach[reach]} '
                             'closes')
        m = j
        while g is not None and m > reach:
            self._add(m, g)
            g = self._input_vjp(m, g)
            m -= 1
        if g is not None:
            self._add(m, g)

    def close(self, j: int) -> torch.Tensor:
        """Module j's losses are routed: free what nothing can reach any more
        and return the next module's input (a leaf needing its gradient when
        later losses reach back through it)."""
        nxt = self._out[j].detach()
        if self.reach_back > 0:
            nxt.requires_grad_()
            self._inp[j + 1] = nxt
        reached_later = self.last_reach[j] > j
        if reached_later and self.recompute is not None and j in self._inp \
                and self.recompute.can(j):
            self._out[j] = None  # only its input is kept
        for m in self._due_at.get(j, ()):
            if m == j:  # nothing after j reaches it: final now, its graph still alive
                self._flush(j)
            else:
                self._due.append(m)
        if self.recompute is None:
            self.flush_due()
        return nxt

    def flush_due(self) -> None:
        """Apply the gradients of the modules closed by now."""
        while self._due:
            self._flush(self._due.pop(0))

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
        self.flush_due()
        for m in sorted(self._out):
            self._flush(m)
        self._inp.clear()
        self._grad.clear()

    # --------------------------------------------------------------- VJPs
    def _add(self, m: int, g: torch.Tensor) -> None:
        self._grad[m] = g if m not in self._grad else self._grad[m] + g

    def _input_vjp(self, m: int, g: torch.Tensor) -> Optional[torch.Tensor]:
        """Gradient at module m's input for ``g`` at its output; no
        parameter gradient (those are applied once, in ``_flush``)."""
        inp = self._inp[m]
        out = self._out[m]
        retain = out is not None
        if out is None:
            inp = inp.detach().requires_grad_()
            out = self.recompute(m, inp)
        if not out.requires_grad:
            return None
        # backward(inputs=) rather than autograd.grad: module trackers (the
        # FLOP counter's) put multi-grad hooks on module inputs, which
        # autograd.grad does not support
        torch.autograd.backward(out, g, retain_graph=retain, inputs=[inp])
        gi, inp.grad = inp.grad, None
        return gi

    def _flush(self, m: int) -> None:
        if m not in self._out:
            return
        out = self._out.pop(m)
        g = self._grad.pop(m, None)
        inp = self._inp.pop(m, None)
        if g is not None:
            if out is None:  # recompute from an input needing no gradient: parameters only
                out = self.recompute(m, inp.detach())
                if out.requires_grad:
                    torch.autograd.backward(out, g)
            elif out.requires_grad:
                if inp is not None and inp.requires_grad:
                    params = graph_leaves(out, inp)
                    if params:
                        torch.autograd.backward(out, g, inputs=params)
                else:
                    torch.autograd.backward(out, g)
        del out
        if self.on_module_done is not None:
            self.on_module_done(m)
