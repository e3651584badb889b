"""Pipelined local learning: the local modules of a model, cut into S stages
of consecutive modules, train on S groups of processes at the same time.

Local learning is *update-unlocked*: module j never waits for a gradient of
module j+1. Rank r of W belongs to stage ``s = r // (W/S)``; the W/S ranks of
a stage are data-parallel replicas of it (their gradients are averaged within
the stage's own process group). At tick t, stage 0 runs its modules on batch
t and stage s > 0 runs its modules on batch t - s, whose input -- the detached
boundary activation, the preprocessed inputs and the data samples -- arrived
from stage s - 1 by point-to-point messages (isend, overlapped with the next
tick's compute). Nothing travels upstream. The last stage computes the task
loss. The pipeline fills during the first S - 1 ticks and drains in
``flush()``.

**Exact by construction.** Stage s processes batch t with the activation that
stage s - 1 computed for batch t with its parameters after t updates --
exactly what sequential local learning gives it -- as long as no loss crosses
a stage boundary (HiLo/MLAAN windows and the task loss's window are refused
when they do). Each stage steps its parameters with the optimizer
hyper-parameters (learning rate, momentum, ...) recorded when its batch
entered the pipeline, so schedules follow the batch index, not the tick.

The parts, one file each: which stage runs which modules and owns which
tensors (``pipeline_layout.py``); the stage's forward, which runs only its
own blocks inside the model's unmodified forward (``pipeline_stage.py``);
the messages between stages (``pipeline_transport.py``); what a rank keeps
of other stages and gathers back from them (``pipeline_state.py``); this
file's ``Pipeline``: the ticks, the batches' optimizer hyper-parameters,
draining. ``MMPipelineParallel`` (``pipeline_wrapper.py``) is the model
wrapper whose ``train_step`` is a tick; ``PipelineHook``
(``pipeline_hook.py``) drains and gathers before validation, checkpoints
and the end of training; ``PipelineSampler`` (``pipeline_sampler.py``)
shares the data among the replicas of a stage.

The step of a stage is the ordinary ``LocalStep`` given the stage's module
range (``StageRange``): the optim wrapper, bound to the pipeline, arms the
learner with it.
"""
import contextlib
from typing import Dict, Iterator, List, Optional

import torch
import torch.distributed as torch_dist
import torch.nn as nn
from mmengine.dist import get_rank, get_world_size, is_distributed
from mmengine.logging import print_log

from mmlocal.local.config import LocalConfigError, PipelineConfig
from mmlocal.local.split import block_paths as list_block_paths
from mmlocal.local.step import StageRange
from mmlocal.utils.mmengine_adapter import accumulative_counts
from .pipeline_layout import (assign_stages, check_stage_leaps, check_stage_windows,
                              tensor_owners)
from .pipeline_stage import StageForward, StageSync
from .pipeline_state import StageState
from .pipeline_transport import StageTransport


class Pipeline:
    """The stage of this rank and its ticks.

    Args:
        model: the task model (unwrapped).
        learner: its ``LocalLearner`` (built with ``local.pipeline``).
        optim_wrapper: the local-learning optim wrapper over model + heads
            (bound to this pipeline by the constructor, ``bind``).
    """

    def __init__(self, model: nn.Module, learner, optim_wrapper) -> None:
        cfg: PipelineConfig = learner.cfg.pipeline
        world, rank = get_world_size(), get_rank()
        if world % cfg.stages:
            raise LocalConfigError(
                f'local.pipeline.stages={cfg.stages} must divide the number of processes '
                f'({world}): launch a multiple of {cfg.stages} processes '
                f'(tools/dist_train.sh CONFIG {cfg.stages * max(world // cfg.stages, 1)})')
        if accumulative_counts(optim_wrapper) != 1:
            raise LocalConfigError('local.pipeline does not support gradient accumulation '
                                   '(optim_wrapper.accumulative_counts): raise the batch size')
        self.model, self.learner, self.optim_wrapper = model, learner, optim_wrapper
        self.stages = cfg.stages
        self.replicas = world // cfg.stages
        self.stage = rank // self.replicas
        self.rank_in_stage = rank % self.replicas
        self.is_last = self.stage == self.stages - 1
        self.blocks = list_block_paths(model, learner.cfg.backbone)
        plan = learner.plan
        self.ranges = assign_stages(plan, self.blocks, cfg)
        check_stage_windows(plan, self.ranges)
        stage_of_module = [self._stage_of(m) for m in range(plan.num_modules)]
        check_stage_leaps(plan, self.blocks, stage_of_module)
        self.modules = StageRange(*self.ranges[self.stage])
        self.model_owner, self.head_owner = tensor_owners(model, learner, plan, self.blocks,
                                                          stage_of_module)
        group = None
        for s in range(self.stages):  # every rank creates every group, in the same order
            ranks = list(range(s * self.replicas, (s + 1) * self.replicas))
            made = torch_dist.new_group(ranks) if world > 1 else None
            if s == self.stage:
                group = made
        backend = torch_dist.get_backend() if is_distributed() else 'gloo'
        self.transport = StageTransport(
            prev=rank - self.replicas if self.stage > 0 else None,
            next=rank + self.replicas if not self.is_last else None,
            group=torch_dist.new_group(list(range(world))) if world > 1 else None,
            comm_device=(torch.device('cuda', torch.cuda.current_device())
                         if backend == 'nccl' else torch.device('cpu')))
        self.run_stage = StageForward(model, learner.cfg.backbone, self.blocks,
                                    plan.boundaries, self.modules)
        self.tick = 0      # ticks since the last flush
        self.taken = 0     # batches stage 0 took since the last flush
        self.hparams: Dict[int, List[dict]] = {}  # batch -> optimizer hyper-parameters
        self.state = StageState(model, learner, optim_wrapper, self.stage, self.stages,
                                self.replicas, self.blocks, self.model_owner, self.head_owner,
                                release_params=cfg.release_params)
        print_log('pipeline: ' + ', '.join(
            f'stage {s}: m{a + 1}..m{b + 1}' for s, (a, b) in enumerate(self.ranges)) +
            f' ({self.replicas} replica(s) per stage); this rank: stage {self.stage}',
            logger='current')
        #: what the optim wrapper needs of the stage: its modules, replicas and parameters
        self.sync = StageSync(self.modules, group, tuple(self.state.own_params()))

    def _stage_of(self, module: int) -> int:
        return next(s for s, (a, b) in enumerate(self.ranges) if a <= module <= b)

    def gather(self, optimizer_state: bool = True) -> None:
        """Every rank takes every stage's tensors (and optimizer state):
        ``StageState.gather``. Call after ``flush``."""
        self.state.gather(optimizer_state)

    # ---------------------------------------------------------------- tick
    def _record_hparams(self, batch: int) -> None:
        self.hparams[batch] = [{k: v for k, v in g.items() if k != 'params'}
                               for g in self.optim_wrapper.optimizer.param_groups]

    @contextlib.contextmanager
    def _hparams_of(self, batch: int) -> Iterator[None]:
        groups = self.optim_wrapper.optimizer.param_groups
        now = [{k: v for k, v in g.items() if k != 'params'} for g in groups]
        for g, hp in zip(groups, self.hparams[batch]):
            g.update(hp)
        try:
            yield
        finally:
            for g, hp in zip(groups, now):
                g.update(hp)
            for b in [b for b in self.hparams if b <= batch]:
                self.hparams.pop(b)  # this stage's later batches are > batch

    def step(self, data: Optional[dict], optim_wrapper) -> Dict[str, torch.Tensor]:
        """One tick: ``data`` enters stage 0 (None while draining); this
        rank's stage processes its batch, if it has one."""
        self.state.keep_own()
        t = self.tick
        if data is not None:
            self._record_hparams(t)
            self.taken += 1
        self.tick += 1
        batch = t - self.stage
        if not 0 <= batch < self.taken:
            return {}  # filling or drained
        device = next(self.model.parameters()).device
        act = None
        if self.stage > 0:
            data, act = self.transport.receive(device)
        model = self.model
        with self._hparams_of(batch):
            with optim_wrapper.optim_context(model):
                if self.stage == 0:
                    data = model.data_preprocessor(data, True)
                step = optim_wrapper.local_step
                losses = self.run_stage(data, step, act)
                outgoing = step.outgoing
            if not self.is_last:
                self.transport.send(data, outgoing)
            loss, log_vars = model.parse_losses(losses) if losses is not None else (None, {})
            optim_wrapper.update_params(loss)
        return log_vars

    # ------------------------------------------------------- drain, gather
    def flush(self, optim_wrapper=None) -> None:
        """Drain: the S - 1 ticks that let every stage process every batch
        that entered the pipeline. All ranks call it together."""
        optim_wrapper = optim_wrapper or self.optim_wrapper
        if self.taken:
            while self.tick < self.taken + self.stages - 1:
                self.step(None, optim_wrapper)
        self.transport.wait()
        self.tick = self.taken = 0
        self.hparams.clear()
