"""What a pipelined rank keeps of the model, and how it gets the rest back.

Between validations a rank needs only its own stage: at its first tick (and
after each gather) it drops the optimizer state of other stages' tensors
and, with ``local.pipeline.release_params``, frees the storage of
parameters it never runs. ``gather`` restores every stage's parameters,
buffers and optimizer state on every rank from the stage's first replica
(before validation and checkpoints, ``PipelineHook``).
"""
from typing import Dict, List, Sequence, Tuple

import torch
import torch.distributed as torch_dist
import torch.nn as nn
from mmengine.dist import get_world_size

from .pipeline_transport import to_cpu, to_device


class StageState:
    """The tensors and optimizer state of one rank's stage.

    Args:
        model, learner, optim_wrapper: the task model (unwrapped), its
            learner, the optim wrapper over both.
        stage, stages, replicas: this rank's stage, the number of stages and
            of replicas per stage.
        blocks: the backbone's blocks (model-relative paths).
        model_owner, head_owner: the stage owning each model and head tensor
            (``pipeline_layout.tensor_owners``).
        release_params: free the storage of parameters this stage never runs.
    """

    def __init__(self, model: nn.Module, learner: nn.Module, optim_wrapper, stage: int,
                 stages: int, replicas: int, blocks: Sequence[str],
                 model_owner: Dict[str, int], head_owner: Dict[str, int],
                 release_params: bool = False) -> None:
        self.model, self.learner, self.optim_wrapper = model, learner, optim_wrapper
        self.stage, self.stages, self.replicas = stage, stages, replicas
        self.blocks = list(blocks)
        self.model_owner, self.head_owner = model_owner, head_owner
        self.release_params = release_params
        self._trim = True  # a resumed optimizer holds every stage's state: keep this stage's
        self._released: Dict[int, Tuple[nn.Parameter, torch.Size]] = {}

    def own_params(self) -> List[nn.Parameter]:
        own = [p for n, p in self.model.named_parameters() if self.model_owner[n] == self.stage]
        own += [p for n, p in self.learner.named_parameters()
                if self.head_owner[n] == self.stage]
        return own

    def keep_own(self) -> None:
        """Before a tick: drop what other stages own (once after each gather)."""
        if self._trim:
            self._trim_optimizer_state()
            if self.release_params:
                self._release()

    def _owned_tensors(self) -> List[Tuple[int, torch.Tensor]]:
        items = [(self.model_owner[n], t) for n, t in
                 list(self.model.named_parameters()) + list(self.model.named_buffers())]
        items += [(self.head_owner[n], t) for n, t in
                  list(self.learner.named_parameters()) + list(self.learner.named_buffers())]
        return items

    def gather(self, optimizer_state: bool = True) -> None:
        """Every rank takes every stage's parameters and buffers (model and
        heads) from the stage's first replica; with ``optimizer_state`` also
        their optimizer state (for a checkpoint: only rank 0 writes it)."""
        if get_world_size() == 1:
            return
        self._materialize()
        items = self._owned_tensors()
        with torch.no_grad():
            for s in range(self.stages):
                src = s * self.replicas
                tensors = [t for owner, t in items if owner == s]
                for dtype in sorted({t.dtype for t in tensors}, key=str):  # same order on all ranks
                    same = [t for t in tensors if t.dtype == dtype]
                    flat = torch.cat([t.detach().reshape(-1) for t in same])
                    torch_dist.broadcast(flat, src)
                    offset = 0
                    for t in same:
                        t.copy_(flat[offset:offset + t.numel()].view_as(t))
                        offset += t.numel()
        if optimizer_state:
            self._gather_optimizer_state()

    def _gather_optimizer_state(self) -> None:
        optimizer = self.optim_wrapper.optimizer
        params = [p for g in optimizer.param_groups for p in g['params']]
        own = {id(p) for p in self.own_params()}
        mine = {i: to_cpu(optimizer.state[p]) for i, p in enumerate(params)
                if id(p) in own and p in optimizer.state}
        for s in range(self.stages):
            box = [mine if s == self.stage else None]
            torch_dist.broadcast_object_list(box, src=s * self.replicas)
            if s != self.stage:
                for i, state in box[0].items():
                    optimizer.state[params[i]] = to_device(state, params[i].device)
        self._trim = True  # dropped again at the next tick: a rank keeps its own stage's

    def _unused_params(self) -> List[nn.Parameter]:
        """Parameters of other stages that this rank never runs: blocks and
        heads of other stages, and (on a non-last stage) what follows its
        last block. Parameters of earlier stages outside the blocks (a stem, a
        position embedding) still run before the pass-throughs: kept."""
        blocks = tuple(b + '.' for b in self.blocks)
        unused = []
        for n, p in self.model.named_parameters():
            owner = self.model_owner[n]
            if owner != self.stage and (n.startswith(blocks) or owner > self.stage):
                unused.append(p)
        unused += [p for n, p in self.learner.named_parameters()
                   if self.head_owner[n] != self.stage]
        return unused

    def _release(self) -> None:
        """Free the storage of parameters this stage never uses (restored,
        with the owners' values, by ``gather``)."""
        for p in self._unused_params():
            if id(p) not in self._released:
                self._released[id(p)] = (p, p.shape)
                p.data = torch.empty(0, dtype=p.dtype, device=p.device)

    def _materialize(self) -> None:
        for p, shape in self._released.values():
            p.data = torch.empty(shape, dtype=p.dtype, device=p.device)
        self._released.clear()

    def _trim_optimizer_state(self) -> None:
        optimizer = self.optim_wrapper.optimizer
        own = {id(p) for p in self.own_params()}
        for p in [p for p in optimizer.state if id(p) not in own]:
            del optimizer.state[p]
        self._trim = False
