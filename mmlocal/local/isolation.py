"""Gradient isolation checked on the model itself, at its first armed step.

Local learning is only local if no autograd path crosses a module boundary:
the hooks detach each boundary output and the stage outputs that leave a
finished module, and the router (``router.py``) carries the gradients the
plan allows (HiLo windows, MLAAN leaps, the task loss's window) by explicit
VJPs, never through the graph. Whether a given model's forward leaves no
other path (a skip connection around a boundary, an extra conv on an early
stage, a stage output rebuilt from an early tensor, a parameter shared by
two modules) depends on its code, so it is checked, not assumed.

On the first armed step, :class:`IsolationCheck` walks the autograd graph of
each module's output (before the boundary detaches it) and of the task
losses, and collects what they reach: parameters and the router's input
leaves. A block's parameters belong to its module; any other parameter
(stem, position embedding, final norm, neck, task heads) to the first
graph that reaches it. A graph that reaches a parameter or an input of
another module is refused with an :class:`IsolationError` naming the
parameter, its module, the tensor that crossed (the module call that
produced it) and its consumer, and the boundary bypassed. Module calls are
told apart by autograd's node sequence numbers, recorded around every
submodule call during that step only; later steps pay nothing.
"""
import collections
import contextlib
from dataclasses import dataclass
from typing import Dict, Iterator, List, Optional, Sequence, Tuple

import torch
import torch.nn as nn

from .router import reached_leaves

#: an autograd node and the path that led to it from a root, for messages
_Path = List[object]


class IsolationError(RuntimeError):
    """An autograd path crosses a local module boundary."""


@dataclass(frozen=True)
class Leak:
    """A graph of module ``graph`` (K-1: the task loss) reached ``target``
    (a parameter name, or a module's input) owned by module ``owner``."""
    graph: int
    target: str
    owner: int
    tensor: str
    consumer: str
    boundary: str
    task: bool = False

    def message(self) -> str:
        source = 'the task loss' if self.task else f'the local loss of m{self.graph + 1}'
        return (f'local module m{self.owner + 1} is not isolated: {source} reaches {self.target} '
                f'of m{self.owner + 1} through {self.tensor}, which {self.consumer} uses without '
                f'passing the boundary {self.boundary}. Detach that tensor where it leaves '
                f'm{self.owner + 1} (or let the plan route it: hilo windows), or choose '
                'local.boundaries that this path does not cross')


def _seq(node) -> int:
    return node._sequence_nr()


class IsolationCheck:
    """The check of one model's first armed step (see the module docstring).

    Args:
        model: the task model.
        block_paths: its backbone's blocks, in execution order.
        boundaries: the plan's boundaries (K-1 block paths).
    """

    def __init__(self, model: nn.Module, block_paths: Sequence[str],
                 boundaries: Sequence[str]) -> None:
        self.boundaries = list(boundaries)
        self.num_modules = len(self.boundaries) + 1
        cuts = [block_paths.index(b) for b in self.boundaries]
        block_module = {p: sum(c < i for c in cuts) for i, p in enumerate(block_paths)}
        self.names: Dict[int, str] = {}
        #: parameter id -> owning module (blocks now; the rest as graphs reach them)
        self.owners: Dict[int, int] = {}
        for name, p in model.named_parameters():
            self.names[id(p)] = name
            for path, m in block_module.items():
                if name.startswith(path + '.'):
                    self.owners[id(p)] = m
                    break
        self._inputs: Dict[int, int] = {}  # id(input leaf of module m) -> m
        self._ends: List[int] = []  # sequence number of each boundary output
        self._calls: List[Tuple[int, int, str]] = []  # (first, last) node numbers of a call
        self._tick = torch.zeros((), requires_grad=True)
        self.done = False

    # -------------------------------------------------------------- record
    def _now(self) -> Optional[int]:
        """The sequence number the next autograd node will get (about)."""
        if not torch.is_grad_enabled():
            return None
        return _seq(self._tick.view(()).grad_fn)

    @contextlib.contextmanager
    def recording(self, model: nn.Module) -> Iterator['IsolationCheck']:
        """Note which module call creates which autograd nodes (for the
        messages) while the first step runs."""
        stack: List[Tuple[str, Optional[int]]] = []

        def enter(name):
            def hook(mod, args):
                stack.append((name, self._now()))
            return hook

        def leave(mod, args, out):
            name, first = stack.pop()
            last = self._now()
            if first is not None and last is not None:
                self._calls.append((first, last, name))

        handles = []
        for name, m in model.named_modules():
            if name:
                handles += [m.register_forward_pre_hook(enter(name)),
                            m.register_forward_hook(leave, always_call=True)]
        try:
            yield self
        finally:
            for h in handles:
                h.remove()
            self.done = True

    def module_input(self, j: int, leaf: torch.Tensor) -> None:
        """``leaf`` is module j's input (a leaf when windows reach back)."""
        if leaf.requires_grad:
            self._inputs[id(leaf)] = j

    # --------------------------------------------------------------- check
    def module_output(self, j: int, h: torch.Tensor) -> None:
        """Module j's output with its graph, before the boundary detaches it."""
        now = self._now()
        if now is not None:
            self._ends.append(now)  # nodes made before belong to modules <= j
        self._check(j, [h], task=False)

    def task_output(self, outputs) -> None:
        """The model's outputs of a ``mode='loss'`` forward (the task losses)."""
        self._check(self.num_modules - 1, list(_tensors(outputs)), task=True)

    def _check(self, j: int, roots: List[torch.Tensor], task: bool) -> None:
        nodes = [t.grad_fn for t in roots if t.grad_fn is not None]
        for node, var in reached_leaves(nodes):
            key = id(var)
            if key in self._inputs:
                owner = self._inputs[key]
                if owner != j:
                    self._refuse(j, nodes, node, f'the input of m{owner + 1}', owner, task)
                continue
            if key not in self.names:
                continue  # a leaf of no module of the model
            owner = self.owners.setdefault(key, j)
            if owner != j:
                self._refuse(j, nodes, node, self.names[key], owner, task)

    # ------------------------------------------------------------ messages
    def _module_at(self, seq: int) -> int:
        """The local module running when node ``seq`` was created."""
        return sum(1 for end in self._ends if end < seq)

    def _call_at(self, seq: int) -> str:
        """The innermost module call that created node ``seq``."""
        inside = [(first, name) for first, last, name in self._calls if first < seq < last]
        return max(inside)[1] if inside else "the model's forward"

    def _refuse(self, j: int, roots: List, target_node, target: str, owner: int,
                task: bool) -> None:
        path = _path_to(roots, target_node)
        # from the target towards the root: the last node made while its owner
        # ran is the tensor that left it; the next one is its consumer
        tensor, consumer = 'the parameter itself', None
        for node in reversed(path[:-1]):
            if self._module_at(_seq(node)) == owner:
                tensor = f'a tensor computed in {self._call_at(_seq(node))}'
                continue
            consumer = self._call_at(_seq(node))
            break
        boundary = self.boundaries[owner] if owner < len(self.boundaries) else 'the last module'
        leak = Leak(j, target, owner, tensor, consumer or "the model's forward", boundary, task)
        raise IsolationError(leak.message())


TOO_FAR = -1


def finished_module(t: torch.Tensor, block_modules: Dict[int, int], tag: str,
                    limit: int = 64) -> Optional[int]:
    """The earliest local module ``t``'s graph is attached to, looking no
    further than the nearest block outputs (``block_modules``: sequence
    number of a block output's node -> its module) and tagged leaves (a
    module's input). Cheap for what a backbone makes from a block output (a
    norm, a reshape): a few nodes. None: no block output or module input is
    reached; more than ``limit`` nodes away: ``TOO_FAR``."""
    found, seen, stack = None, set(), [t.grad_fn]
    while stack:
        fn = stack.pop()
        if fn is None or fn in seen:
            continue
        seen.add(fn)
        if len(seen) > limit:
            return TOO_FAR
        var = getattr(fn, 'variable', None)
        m = getattr(var, tag, None) if var is not None else block_modules.get(_seq(fn))
        if m is not None:
            found = m if found is None else min(found, m)
            continue
        if var is None:
            stack.extend(f for f, _ in fn.next_functions)
    return found


def _tensors(obj) -> Iterator[torch.Tensor]:
    if isinstance(obj, torch.Tensor):
        yield obj
    elif isinstance(obj, dict):
        for v in obj.values():
            yield from _tensors(v)
    elif isinstance(obj, (list, tuple)):
        for v in obj:
            yield from _tensors(v)


def _path_to(roots: List, target) -> _Path:
    """Nodes from a root to ``target`` (breadth first)."""
    parent = {fn: None for fn in roots}
    queue = collections.deque(roots)
    while queue:
        fn = queue.popleft()
        if fn is target:
            path = []
            while fn is not None:
                path.append(fn)
                fn = parent[fn]
            return path[::-1]
        for nxt, _ in fn.next_functions:
            if nxt is not None and nxt not in parent:
                parent[nxt] = fn
                queue.append(nxt)
    return [target]
