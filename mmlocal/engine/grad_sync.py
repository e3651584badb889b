"""Gradient synchronisation across ranks, owned by the local-learning engine.

DDP's reducer expects one backward per forward; local learning runs one per
module (and k VJPs per module with HiLo windows), and its heads are built
after the model is wrapped. ``LocalLearningOptimWrapper`` therefore keeps the
reducer out (``no_sync`` around the forward) and averages every gradient
here, once per optimizer step:

* parameters are packed into flat buckets of at most ``bucket_bytes``, in
  the optimizer's order (identical on every rank), one ``all_reduce`` each;
* each bucket carries one extra element per parameter, 1 where the rank has a
  gradient: a parameter used on some ranks only is averaged with zeros (as
  DDP does), one unused on every rank keeps ``grad=None`` (as one process
  would), and ranks never disagree on the buckets' sizes;
* optional overlap: a module's buckets are launched asynchronously as soon as
  its gradients are final (the learner reports each finished module), while
  the forward goes on. Which parameters are final after which module is
  *measured* in the first synchronised iteration (post-accumulate-grad hooks)
  and agreed on by all ranks; a gradient that arrives after its parameter was
  launched stops training with an error instead of being lost.
"""
import time
from typing import Dict, Iterable, List, Optional, Tuple

import torch
import torch.distributed as torch_dist
import torch.nn as nn
from mmengine.dist import get_world_size


class GradientSynchronizer:
    """Averages the gradients of ``params`` over all ranks.

    Args:
        params: the parameters to synchronise (the optimizer's, in order).
        bucket_bytes: the largest flat buffer of one all-reduce.
        overlap: launch a module's buckets as soon as its gradients are final
            (``module_done``) instead of all at the step.
        group: the process group to average over (None: all ranks; the
            pipeline gives each stage's replicas their own).
    """

    def __init__(self, params: Iterable[nn.Parameter], bucket_bytes: int = 25 * 2**20,
                 overlap: bool = False, group=None) -> None:
        self.group = group
        seen, self.params = set(), []
        for p in params:
            if p.requires_grad and id(p) not in seen:
                if p.is_sparse:
                    raise NotImplementedError('mmlocal cannot synchronise sparse gradients')
                seen.add(id(p))
                self.params.append(p)
        self.bucket_bytes = int(bucket_bytes)
        self.overlap = overlap
        self.comm_seconds = 0.  # time spent in sync() (benchmarks read it)
        self.sync_calls = 0
        self._pending: List[Tuple[List[nn.Parameter], torch.Tensor, object]] = []
        self._launched: Dict[int, bool] = {}
        # overlap state
        self._active = False   # inside an iteration that ends with a step
        self._done = 0         # modules reported finished in this iteration
        self._last: Optional[List[int]] = None  # calibration: last module per param
        self._stages: Optional[List[List[List[nn.Parameter]]]] = None  # buckets per module
        self._index = {id(p): i for i, p in enumerate(self.params)}
        self._handles = []
        if overlap:
            for p in self.params:
                self._handles.append(p.register_post_accumulate_grad_hook(self._accumulated))

    # ------------------------------------------------------------ buckets
    def _buckets(self, params: List[nn.Parameter]) -> List[List[nn.Parameter]]:
        buckets, current, size = [], [], 0
        for p in params:
            nbytes = p.numel() * p.element_size()
            if current and (p.dtype != current[0].dtype or p.device != current[0].device
                            or size + nbytes > self.bucket_bytes):
                buckets.append(current)
                current, size = [], 0
            current.append(p)
            size += nbytes
        if current:
            buckets.append(current)
        return buckets

    def _launch(self, bucket: List[nn.Parameter]) -> None:
        ref = bucket[0]
        parts = [(p.grad if p.grad is not None else torch.zeros_like(p)).reshape(-1)
                 for p in bucket]
        parts.append(torch.tensor([p.grad is not None for p in bucket],
                                  dtype=ref.dtype, device=ref.device))
        flat = torch.cat(parts)
        work = torch_dist.all_reduce(flat, group=self.group, async_op=True)
        for p in bucket:
            self._launched[id(p)] = True
        self._pending.append((bucket, flat, work))

    def _finish(self, world: int) -> None:
        for bucket, flat, work in self._pending:
            work.wait()
            n = flat.numel() - len(bucket)
            used = flat[n:].tolist()
            grads = flat[:n].div_(world)
            offset = 0
            for p, u in zip(bucket, used):
                k = p.numel()
                g = grads[offset:offset + k].view_as(p)
                offset += k
                if u == 0:  # unused on every rank: as one process would leave it
                    p.grad = None
                elif p.grad is None:
                    p.grad = g.clone()
                else:
                    p.grad.copy_(g)
        self._pending.clear()
        self._launched.clear()

    # ---------------------------------------------------------------- sync
    def sync(self) -> None:
        """Average all gradients not launched yet, wait for every bucket."""
        world = get_world_size(self.group)
        if world == 1:
            return
        start = time.perf_counter()
        rest = [p for p in self.params if id(p) not in self._launched]
        for bucket in self._buckets(rest):
            self._launch(bucket)
        self._finish(world)
        if self.overlap and self._active and self._stages is None:
            self._agree_on_stages()
        self._active = False
        self.comm_seconds += time.perf_counter() - start
        self.sync_calls += 1

    # ------------------------------------------------------------- overlap
    def begin(self, will_step: bool) -> None:
        """A new iteration starts; ``will_step``: it ends with a sync+step
        (the last micro-batch of gradient accumulation)."""
        self._active = self.overlap and will_step and get_world_size(self.group) > 1
        self._done = 0
        if self._active and self._stages is None:
            self._last = [-1] * len(self.params)

    def module_done(self, module: int) -> None:
        """The learner finished local module ``module``: launch the buckets of
        every parameter measured to be final at this point."""
        if not self._active:
            return
        if self._stages is not None and self._done < len(self._stages):
            start = time.perf_counter()
            for bucket in self._stages[self._done]:
                self._launch(bucket)
            self.comm_seconds += time.perf_counter() - start
        self._done += 1

    def _accumulated(self, p: torch.Tensor) -> None:
        if not self._active:
            return
        if self._stages is None:
            self._last[self._index[id(p)]] = self._done
        elif id(p) in self._launched:
            name = f'parameter #{self._index[id(p)]} of shape {tuple(p.shape)}'
            raise RuntimeError(
                f'{name} received a gradient after its all-reduce was launched (the '
                'model uses it at different points in different iterations): set '
                'optim_wrapper.overlap_grad_sync=False')

    def _agree_on_stages(self) -> None:
        """After the calibration iteration: every rank takes the latest module
        each parameter was seen at, so all ranks launch the same buckets."""
        last = torch.tensor(self._last, dtype=torch.long)
        torch_dist.all_reduce(last, op=torch_dist.ReduceOp.MAX, group=self.group)
        num_stages = self._done
        stages: List[List[nn.Parameter]] = [[] for _ in range(num_stages)]
        for p, d in zip(self.params, last.tolist()):
            if 0 <= d < num_stages:  # final before module d's report; else at the step
                stages[d].append(p)
        self._stages = [self._buckets(s) for s in stages]
        self._last = None

    @property
    def early_fraction(self) -> float:
        """Fraction of gradient elements launched before the step (overlap)."""
        if not self._stages:
            return 0.
        early = sum(p.numel() for s in self._stages for b in s for p in b)
        return early / max(sum(p.numel() for p in self.params), 1)

    def remove(self) -> None:
        for h in self._handles:
            h.remove()
        self._handles = []
