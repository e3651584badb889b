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

**How a rank runs only its stage inside the model's unmodified forward:**
during a pipelined step the blocks upstream of the stage are pass-throughs
(their ``forward`` returns their first input) and the hook of the boundary
just before the stage returns the received activation; after the stage's last
boundary the step raises ``StopForward``, which ``Pipeline.step`` catches. So
val/test/predict, necks, heads and the toolbox's ``loss`` stay untouched.

``MMPipelineParallel`` is the model wrapper (``model_wrapper_cfg``) whose
``train_step`` is the pipeline's tick; ``PipelineHook`` (``pipeline_hook.py``)
drains the pipeline and gathers every stage's parameters, buffers and
optimizer state before validation, checkpoints and the end of training;
``PipelineSampler`` (``pipeline_sampler.py``) shares the data among the
replicas of a stage.
"""
import contextlib
import pickle
from typing import Dict, Iterator, List, Optional, Sequence, Tuple

import torch
import torch.distributed as torch_dist
import torch.nn as nn
from mmengine.dist import get_rank, get_world_size, is_distributed
from mmengine.logging import print_log
from mmengine.model import is_model_wrapper
from mmengine.registry import MODEL_WRAPPERS

from mmlocal.local.config import LocalConfigError, PipelineConfig
from mmlocal.local.plan import LocalPlan
from mmlocal.local.split import block_paths as list_block_paths
from mmlocal.local.step import LocalStep
from mmlocal.utils.mmengine_adapter import accumulative_counts


class StopForward(Exception):
    """Raised after a non-last stage's last boundary: the rest of the
    forward belongs to later stages."""


# ---------------------------------------------------------------- layout
def module_blocks(plan: LocalPlan, blocks: Sequence[str]) -> List[int]:
    """Number of backbone blocks in each local module."""
    ends = [blocks.index(b) for b in plan.boundaries] + [len(blocks) - 1]
    return [e - (ends[m - 1] if m else -1) for m, e in enumerate(ends)]


def assign_stages(plan: LocalPlan, blocks: Sequence[str],
                  cfg: PipelineConfig) -> List[Tuple[int, int]]:
    """(first, last) module of each stage: explicit ``modules_per_stage``,
    equal module counts, or equal block counts (the default: blocks of one
    backbone cost about the same, e.g. ResNet-110's or ViT's)."""
    k, s = plan.num_modules, cfg.stages
    if s > k:
        raise LocalConfigError(f'local.pipeline.stages={s} exceeds the {k} local modules: '
                               f'use at most {k} stages or more modules')
    if cfg.modules_per_stage is not None:
        counts = list(cfg.modules_per_stage)
        if sum(counts) != k:
            raise LocalConfigError(f'local.pipeline.modules_per_stage={tuple(counts)} sums to '
                                   f'{sum(counts)}, but the split has {k} local modules')
    else:
        weights = [1] * k if cfg.balance == 'modules' else module_blocks(plan, blocks)
        total, counts, start = sum(weights), [], 0
        for i in range(s):
            if i == s - 1:
                counts.append(k - start)
                break
            target, acc, n = total * (i + 1) / s, sum(weights[:start]), 0
            # take modules while it brings the cumulative cost closer to the target
            while start + n < k - (s - i - 1) and (
                    n == 0 or abs(acc + weights[start + n] - target) <= abs(acc - target)):
                acc += weights[start + n]
                n += 1
            counts.append(n)
            start += n
    ranges, start = [], 0
    for n in counts:
        ranges.append((start, start + n - 1))
        start += n
    return ranges


def check_stage_windows(plan: LocalPlan, ranges: Sequence[Tuple[int, int]]) -> None:
    """A loss whose gradient crosses a stage boundary needs a gradient sent
    upstream: refused, with the options named."""
    stage_of = {m: s for s, (a, b) in enumerate(ranges) for m in range(a, b + 1)}
    fix = ('put the stage boundaries where no window crosses them '
           '(local.pipeline.modules_per_stage; HiLo cascade windows of k >= 2 slide over every '
           'module boundary, so for them this means local.hilo.cascade=1), or train this '
           'config without local.pipeline (data parallel)')
    layout = ', '.join(f'stage {s}: m{a + 1}..m{b + 1}' for s, (a, b) in enumerate(ranges))
    for hp in plan.heads:
        if stage_of[max(hp.reach, 0)] != stage_of[hp.module]:
            raise LocalConfigError(
                f'local head {hp.key} trains modules m{hp.reach + 1}..m{hp.module + 1}, which '
                f'cross a pipeline stage boundary ({layout}); a pipeline sends no gradient '
                f'upstream: {fix}')
    last = plan.num_modules - 1
    if plan.task_weight_below > 0 and stage_of[max(plan.task_reach, 0)] != stage_of[last]:
        raise LocalConfigError(
            f'the task loss trains modules m{plan.task_reach + 1}..m{last + 1}, which cross '
            f'a pipeline stage boundary ({layout}): {fix}')


def _module_of_block(plan: LocalPlan, blocks: Sequence[str]) -> List[int]:
    ends = [blocks.index(b) for b in plan.boundaries]
    return [sum(1 for e in ends if e < i) for i in range(len(blocks))]


def tensor_owners(model: nn.Module, learner: nn.Module, plan: LocalPlan,
                  blocks: Sequence[str], stage_of_module: Sequence[int]
                  ) -> Tuple[Dict[str, int], Dict[str, int]]:
    """The stage owning each model and head tensor (parameters and buffers).

    A tensor inside a block belongs to its module's stage; one outside every
    block to the stage of the last block registered before it (so a stem,
    class token or position embedding goes to stage 0, a final norm, neck or
    task head to the last stage); a head to its module's stage. Checked
    against the parameters that receive gradients in the tests.
    """
    order = {name: i for i, (name, _) in enumerate(model.named_modules())}
    block_stage = [stage_of_module[m] for m in _module_of_block(plan, blocks)]
    block_pos = [(order[b], b, s) for b, s in zip(blocks, block_stage)]

    def stage_of_path(path: str) -> int:
        for _, b, s in block_pos:
            if path == b or path.startswith(b + '.'):
                return s
        i = order.get(path, -1)
        before = [s for o, _, s in block_pos if o < i]
        return before[-1] if before else 0

    model_owner = {}
    for name, _ in list(model.named_parameters()) + list(model.named_buffers()):
        model_owner[name] = stage_of_path(name.rpartition('.')[0])
    head_owner = {}
    for name, _ in list(learner.named_parameters()) + list(learner.named_buffers()):
        parts = name.split('.')
        module = int(parts[1][1:]) - 1  # heads.m3.* / cascade_heads.m3.*
        head_owner[name] = stage_of_module[module]
    return model_owner, head_owner


def _passthrough(*args, **kwargs):
    return args[0]


# ------------------------------------------------------------------ step
class PipelineStep(LocalStep):
    """A ``LocalStep`` that runs only the modules of one stage: upstream
    boundaries hand over the received activation, the stage's last boundary
    stops the forward."""

    def __init__(self, learner, backward, on_module_done=None, pipeline=None) -> None:
        super().__init__(learner, backward, on_module_done)
        self.pipe = pipeline

    def on_boundary(self, j: int, h: torch.Tensor) -> torch.Tensor:
        first, last = self.pipe.modules
        if j < first:
            self.cur = j + 1
            return self.pipe.received if j == first - 1 else h
        out = super().on_boundary(j, h)
        if j == last:
            self.pipe.outgoing = out.detach()
            raise StopForward
        return out

    def finish(self) -> Dict[str, torch.Tensor]:
        last = self.plan.num_modules - 1
        if self.pipe.is_last:
            g = self.router.input_grad(last)
            if g is not None and self.plan.task_weight_below > 0 \
                    and self.plan.task_reach < last:
                self.router.route(last - 1, g * self.plan.task_weight_below,
                                  self.plan.task_reach)
        self.router.finish()
        first, last_own = self.pipe.modules
        for hp in self.plan.heads:  # MLAAN EMA: the stage's own heads only
            if hp.ema and first <= hp.module <= last_own:
                head = self.learner.head(hp)
                head.update_ema(self.learner.model.get_submodule(head.sources[0]))
        self.targets = None
        return self.log_vars


# -------------------------------------------------------------- messages
# Messages travel in a process group of their own: on the default group, gloo's collectives
# number their messages with tags that user tags would collide with (a broadcast's root
# does not wait, so a stage can be sending while the next still receives a broadcast).
_TAG_HEADER, _TAG_PAYLOAD, _TAG_ACTIVATION = 17, 18, 19


def _send_obj(obj, dst: int, device, group) -> List:
    """isend ``obj`` (pickled) and return the works and buffers to keep."""
    payload = torch.frombuffer(bytearray(pickle.dumps(obj)), dtype=torch.uint8).to(device)
    header = torch.tensor([payload.numel()], dtype=torch.int64, device=device)
    return [(torch_dist.isend(header, dst, group=group, tag=_TAG_HEADER), header),
            (torch_dist.isend(payload, dst, group=group, tag=_TAG_PAYLOAD), payload)]


def _recv_obj(src: int, device, group):
    header = torch.empty(1, dtype=torch.int64, device=device)
    torch_dist.recv(header, src, group=group, tag=_TAG_HEADER)
    payload = torch.empty(int(header.item()), dtype=torch.uint8, device=device)
    torch_dist.recv(payload, src, group=group, tag=_TAG_PAYLOAD)
    return pickle.loads(payload.cpu().numpy().tobytes())


def _cpu(obj):
    """Preprocessed data on the CPU (pickled in messages)."""
    if isinstance(obj, torch.Tensor):
        return obj.detach().cpu()
    if isinstance(obj, dict):
        return {k: _cpu(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(_cpu(v) for v in obj)
    if hasattr(obj, 'cpu') and callable(obj.cpu):
        return obj.cpu()
    return obj


def _to(obj, device):
    if isinstance(obj, torch.Tensor):
        return obj.to(device)
    if isinstance(obj, dict):
        return {k: _to(v, device) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(_to(v, device) for v in obj)
    if hasattr(obj, 'to') and callable(obj.to):
        return obj.to(device)
    return obj


# -------------------------------------------------------------- pipeline
class Pipeline:
    """The stage of this rank and its ticks.

    Args:
        model: the task model (unwrapped).
        learner: its ``LocalLearner`` (built with ``local.pipeline``).
        optim_wrapper: the local-learning optim wrapper over model + heads.
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
        for hp in plan.heads:  # MLAAN copies of later blocks must live on the same stage
            for path in hp.leap:
                m = _module_of_block(plan, self.blocks)[self.blocks.index(path)]
                if self._stage_of(m) != self._stage_of(hp.module):
                    raise LocalConfigError(
                        f'MLAAN head {hp.key} copies block {path} of another pipeline stage; '
                        'its EMA copy would follow a block this stage does not train: align '
                        'the stages (local.pipeline.modules_per_stage) or drop local.mlaan')
        self.modules = self.ranges[self.stage]
        stage_of_module = [self._stage_of(m) for m in range(plan.num_modules)]
        self.model_owner, self.head_owner = tensor_owners(model, learner, plan, self.blocks,
                                                          stage_of_module)
        self.group = None
        for s in range(self.stages):  # every rank creates every group, in the same order
            ranks = list(range(s * self.replicas, (s + 1) * self.replicas))
            group = torch_dist.new_group(ranks) if world > 1 else None
            if s == self.stage:
                self.group = group
        # point-to-point messages: their own group (see _TAG_HEADER)
        self.p2p_group = torch_dist.new_group(list(range(world))) if world > 1 else None
        self.prev = rank - self.replicas if self.stage > 0 else None
        self.next = rank + self.replicas if not self.is_last else None
        backend = torch_dist.get_backend() if is_distributed() else 'gloo'
        self.comm_device = (torch.device('cuda', torch.cuda.current_device())
                            if backend == 'nccl' else torch.device('cpu'))
        optim_wrapper.sync_group = self.group
        optim_wrapper.sync_params = self.own_params()
        optim_wrapper.overlap_grad_sync = False  # a stage's gradients are all final together

        def factory(lrn, backward, on_module_done=None):
            return PipelineStep(lrn, backward, on_module_done, pipeline=self)
        learner.step_factory = factory
        self.received: Optional[torch.Tensor] = None
        self.outgoing: Optional[torch.Tensor] = None
        self.tick = 0      # ticks since the last flush
        self.taken = 0     # batches stage 0 took since the last flush
        self.hparams: Dict[int, List[dict]] = {}  # batch -> optimizer hyper-parameters
        self._sends: List = []
        self._trim = True  # a resumed optimizer holds every stage's state: keep this stage's
        self.release_params = cfg.release_params
        self._released: Dict[int, Tuple[nn.Parameter, torch.Size]] = {}
        print_log('pipeline: ' + ', '.join(
            f'stage {s}: m{a + 1}..m{b + 1}' for s, (a, b) in enumerate(self.ranges)) +
            f' ({self.replicas} replica(s) per stage); this rank: stage {self.stage}',
            logger='current')

    def _stage_of(self, module: int) -> int:
        return next(s for s, (a, b) in enumerate(self.ranges) if a <= module <= b)

    def own_params(self) -> List[nn.Parameter]:
        own = [p for n, p in self.model.named_parameters() if self.model_owner[n] == self.stage]
        own += [p for n, p in self.learner.named_parameters()
                if self.head_owner[n] == self.stage]
        return own

    # ---------------------------------------------------------------- tick
    @contextlib.contextmanager
    def _stage_forward(self) -> Iterator[None]:
        """Blocks upstream of the stage pass their input through."""
        skipped = []
        if self.stage > 0:
            end = self.blocks.index(self.learner.plan.boundaries[self.modules[0] - 1])
            for path in self.blocks[:end + 1]:
                block = self.model.get_submodule(path)
                block.forward = _passthrough
                skipped.append(block)
        try:
            yield
        finally:
            for block in skipped:
                del block.forward

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
        if self._trim:
            self._trim_optimizer_state()
            if self.release_params:
                self._release()
        t = self.tick
        if data is not None:
            self._record_hparams(t)
            self.taken += 1
        self.tick += 1
        batch = t - self.stage
        if not 0 <= batch < self.taken:
            return {}  # filling or drained
        if self.stage == 0:
            act = None
        else:
            data, act = self._receive()
        model = self.model
        self.received, self.outgoing = act, None
        with self._hparams_of(batch):
            with optim_wrapper.optim_context(model):
                if self.stage == 0:
                    data = model.data_preprocessor(data, True)
                with self._stage_forward():
                    try:
                        losses = model(**data, mode='loss')
                    except StopForward:
                        losses = None
            if not self.is_last:
                self._send(data, self.outgoing)
            if losses is not None:
                loss, log_vars = model.parse_losses(losses)
            else:
                loss, log_vars = None, {}
            optim_wrapper.update_params(loss)
        self.received = self.outgoing = None
        return log_vars

    # ------------------------------------------------------------ messages
    def _wait_sends(self) -> None:
        for work, _ in self._sends:
            work.wait()
        self._sends = []

    def _send(self, data: dict, act: torch.Tensor) -> None:
        self._wait_sends()
        act = act.detach().contiguous().to(self.comm_device)
        meta = dict(data=_cpu(data), shape=tuple(act.shape), dtype=act.dtype)
        self._sends = _send_obj(meta, self.next, self.comm_device, self.p2p_group)
        self._sends.append((torch_dist.isend(act, self.next, group=self.p2p_group,
                                             tag=_TAG_ACTIVATION), act))

    def _receive(self) -> Tuple[dict, torch.Tensor]:
        meta = _recv_obj(self.prev, self.comm_device, self.p2p_group)
        act = torch.empty(meta['shape'], dtype=meta['dtype'], device=self.comm_device)
        torch_dist.recv(act, self.prev, group=self.p2p_group, tag=_TAG_ACTIVATION)
        device = next(self.model.parameters()).device
        return _to(meta['data'], device), act.to(device)

    # ------------------------------------------------------- drain, gather
    def flush(self, optim_wrapper=None) -> None:
        """Drain: the S - 1 ticks that let every stage process every batch
        that entered the pipeline. All ranks call it together."""
        optim_wrapper = optim_wrapper or self.optim_wrapper
        if self.taken:
            while self.tick < self.taken + self.stages - 1:
                self.step(None, optim_wrapper)
        self._wait_sends()
        self.tick = self.taken = 0
        self.hparams.clear()

    def _owned_tensors(self) -> List[Tuple[int, torch.Tensor]]:
        items = [(self.model_owner[n], t) for n, t in
                 list(self.model.named_parameters()) + list(self.model.named_buffers())]
        items += [(self.head_owner[n], t) for n, t in
                  list(self.learner.named_parameters()) + list(self.learner.named_buffers())]
        return items

    def gather(self, optimizer_state: bool = True) -> None:
        """Every rank takes every stage's parameters and buffers (model and
        heads) from the stage's first replica; with ``optimizer_state`` also
        their optimizer state (for a checkpoint: only rank 0 writes it). Call
        after ``flush``."""
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
        mine = {i: _cpu(optimizer.state[p]) for i, p in enumerate(params)
                if id(p) in own and p in optimizer.state}
        for s in range(self.stages):
            box = [mine if s == self.stage else None]
            torch_dist.broadcast_object_list(box, src=s * self.replicas)
            if s != self.stage:
                for i, state in box[0].items():
                    optimizer.state[params[i]] = _to(state, params[i].device)
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


# --------------------------------------------------------------- wrapper
@MODEL_WRAPPERS.register_module()
class MMPipelineParallel(nn.Module):
    """Model wrapper of pipelined local learning
    (``model_wrapper_cfg=dict(type='MMPipelineParallel')``): ``train_step``
    is a pipeline tick; val/test steps run the whole (gathered) model.

    Every rank starts from rank 0's weights (broadcast here, as DDP does).
    The pipeline itself is attached by ``LocalLearningOptimWrapperConstructor``
    when ``local.pipeline`` is set.
    """

    def __init__(self, module: nn.Module, **kwargs) -> None:
        super().__init__()
        if kwargs:
            raise TypeError(f'MMPipelineParallel takes no {sorted(kwargs)}')
        self.module = module
        self.pipeline: Optional[Pipeline] = None
        if is_distributed() and get_world_size() > 1:
            with torch.no_grad():
                for t in list(module.parameters()) + list(module.buffers()):
                    torch_dist.broadcast(t.data, src=0)

    def train_step(self, data, optim_wrapper) -> Dict[str, torch.Tensor]:
        if self.pipeline is None:
            raise RuntimeError('MMPipelineParallel needs optim_wrapper.local.pipeline='
                               'dict(stages=S) with the LocalLearningOptimWrapperConstructor')
        return self.pipeline.step(data, optim_wrapper)

    def val_step(self, data) -> list:
        if self.pipeline is not None and self.pipeline.taken:
            raise RuntimeError('validation of a pipelined model that was not drained: add '
                               "custom_hooks=[dict(type='PipelineHook')] to the config")
        return self.module.val_step(data)

    def test_step(self, data) -> list:
        return self.module.test_step(data)

    def forward(self, *args, **kwargs):
        return self.module(*args, **kwargs)


def attach_pipeline(model: nn.Module, learner, optim_wrapper) -> Pipeline:
    """Called by the constructor when ``local.pipeline`` is set."""
    if get_world_size() > 1 and not isinstance(model, MMPipelineParallel):
        raise LocalConfigError(
            "local.pipeline needs the model wrapped for the pipeline: add "
            "model_wrapper_cfg=dict(type='MMPipelineParallel') to the config "
            f'(the model is wrapped in {type(model).__name__})')
    base = model.module if is_model_wrapper(model) else model
    pipeline = Pipeline(base, learner, optim_wrapper)
    if isinstance(model, MMPipelineParallel):
        model.pipeline = pipeline
    return pipeline
