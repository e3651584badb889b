"""Optim wrappers for local learning: one optimizer step over K local backwards.

mmengine's ``train_step`` runs ``optim_context`` around the forward and then
``update_params(task_loss)``. Local learning backpropagates each module's
loss *during* the forward, so ``LocalLearningMixin``

* arms the learner for the forward (``learner.armed``) and keeps the step it
  yields until ``update_params``, where ``step.finish()`` closes the last
  cascade window after the task loss's backward;
* gives the learner a backward with the task loss's scaling (gradient
  accumulation, AMP loss scale) that does not count an extra iteration;
* keeps DDP's reducer out (``no_sync`` around the forward: it cannot follow
  several backwards per forward, and the heads were added after wrapping)
  and averages all gradients once per step (``grad_sync.py``);
* hands every module's local losses, unread (no host sync in the step), to
  ``LocalLossHook``, which checks and logs them after the iteration
  (``train/local.m3.loss_cls``...); without the hook it reads them itself at
  the end of ``update_params``, all in one host sync;
* saves the heads beside the optimizer state (``local_learner``): the
  model's own state_dict stays the toolbox's.

It composes with mmengine's wrappers: ``LocalLearningOptimWrapper`` is
``OptimWrapper`` plus local learning, ``AmpLocalLearningOptimWrapper`` is
``AmpOptimWrapper`` plus local learning (autocast, loss scaler, its state
saved and resumed by mmengine). The constructor picks one from the standard
``type``, so ``--amp``'s type swap to ``AmpOptimWrapper`` just works.
"""
import contextlib
import inspect
from collections.abc import Mapping
from typing import TYPE_CHECKING, Dict, Optional

import torch
from mmengine.dist import get_world_size
from mmengine.logging import MessageHub
from mmengine.model import is_model_wrapper
from mmengine.optim import AmpOptimWrapper, DefaultOptimWrapperConstructor, OptimWrapper

from mmlocal.analysis import resolve_measured_split
from mmlocal.local.build import build_learner
from mmlocal.local.loss_log import LocalLosses
from mmlocal.registry import OPTIM_WRAPPER_CONSTRUCTORS, OPTIM_WRAPPERS
from mmlocal.utils.mmengine_adapter import count_iteration
from .distributed_heads import distribute_heads
from .grad_sync import GradientSynchronizer
from .local_clip import ModuleGradClip, pop_clip_scope

if TYPE_CHECKING:
    from .pipeline_stage import StageSync


class LocalLearningMixin:
    """Local learning on top of an mmengine ``OptimWrapper`` class."""

    def _init_local(self, bucket_size_mb: float, overlap_grad_sync: bool,
                    local: Optional[dict]) -> None:
        if local is not None:
            raise ValueError(
                "optim_wrapper.local needs optim_wrapper.constructor="
                "'LocalLearningOptimWrapperConstructor' (it builds the local heads "
                'before the optimizer collects parameters); add it to the config')
        self.learner = None
        self.bucket_bytes = int(bucket_size_mb * 2**20)
        self.overlap_grad_sync = overlap_grad_sync
        self.synchronizer: Optional[GradientSynchronizer] = None
        self._step = None
        # local losses of the last step, unread: LocalLossHook reads them after the
        # iteration (defer_local_losses); without it update_params reads them at once
        self._defer_losses = False
        self._unread = None
        # a pipeline stage (``bind``): its steps train its modules, and it averages its
        # own parameters over its replicas only
        self.pipeline = None
        self._stage: Optional['StageSync'] = None
        # clip_grad.scope: 'module' clips each local module by its own norm (local_clip.py)
        self.clip_scope = pop_clip_scope(self.clip_grad_kwargs, getattr(self, 'grad_name', ''))
        self.module_clip = ModuleGradClip(**self.clip_grad_kwargs) \
            if self.clip_grad_kwargs and self.clip_scope == 'module' else None

    def bind(self, learner, pipeline=None) -> None:
        """The learner this wrapper steps, and the pipeline stage
        (``engine/pipeline.py``) of this rank when ``local.pipeline`` is set."""
        self.learner = learner
        self.pipeline = pipeline
        self._stage = pipeline.sync if pipeline is not None else None
        if pipeline is not None:
            self.overlap_grad_sync = False  # a stage's gradients are all final together

    @property
    def local_step(self):
        """The ``LocalStep`` armed by ``optim_context`` (None outside it)."""
        return self._step

    @property
    def sync_group(self):
        """The process group gradients are averaged over (None: all ranks)."""
        return self._stage.group if self._stage is not None else None

    # ----------------------------------------------------------- context
    @contextlib.contextmanager
    def optim_context(self, model: torch.nn.Module):
        with contextlib.ExitStack() as stack:
            if is_model_wrapper(model) and hasattr(model, 'no_sync'):
                stack.enter_context(model.no_sync())  # synced once, after all backwards
            on_done = None
            if get_world_size(self.sync_group) > 1:
                sync = self._get_synchronizer()
                sync.begin(will_step=self.should_sync())
                on_done = sync.module_done if self.overlap_grad_sync else None
            stack.enter_context(super().optim_context(model))  # autocast under AMP
            if self.learner is not None:
                self._step = stack.enter_context(self.learner.armed(
                    backward=self.local_backward, on_module_done=on_done,
                    stage=self._stage.modules if self._stage is not None else None))
            yield

    # ---------------------------------------------------------- backward
    def _scaled(self, loss: torch.Tensor) -> torch.Tensor:
        scaler = getattr(self, 'loss_scaler', None)
        return scaler.scale(loss) if scaler is not None else loss

    def local_backward(self, loss: torch.Tensor) -> None:
        """Backward of a local loss inside the forward: scaled like the task
        loss of this iteration, not counted as an iteration."""
        self._scaled(self.scale_loss(loss)).backward()

    def update_params(self, loss: Optional[torch.Tensor], step_kwargs: Optional[Dict] = None,
                      zero_kwargs: Optional[Dict] = None) -> None:
        if loss is not None:
            self.backward(self.scale_loss(loss))
        else:  # a pipeline stage without the task loss: still one iteration
            count_iteration(self)
        losses = self.finish_local_step()
        if self.should_update():
            self.sync_gradients()
            self.step(**(step_kwargs or {}))
            self.zero_grad(**(zero_kwargs or {}))
        self._hand_over(losses)

    def finish_local_step(self) -> Mapping:
        """After the task loss's backward: close the step's last window
        (``update_params`` calls it); returns the local losses, unread."""
        step, self._step = self._step, None
        return step.finish() if step is not None else {}

    # ----------------------------------------------------------- losses
    def defer_local_losses(self, defer: bool = True) -> None:
        """``LocalLossHook`` reads each iteration's local losses after
        ``train_step`` (``pop_local_losses``); ``False``: ``update_params``
        reads them itself (one host sync per step)."""
        self._defer_losses = defer
        if not defer:
            self._log(self.pop_local_losses())

    def pop_local_losses(self) -> Optional[LocalLosses]:
        """The last step's local losses, unread (None if there are none)."""
        losses, self._unread = self._unread, None
        return losses

    def _hand_over(self, losses: Mapping) -> None:
        # a step nobody read (a loop that calls train_step without the hook's
        # after_train_iter) is read now: the check is never skipped
        self._log(self.pop_local_losses())
        if not isinstance(losses, LocalLosses) or not losses:
            return
        if self._defer_losses:
            self._unread = losses
        else:
            self._log(losses)

    @staticmethod
    def _log(losses: Optional[LocalLosses]) -> None:
        if losses:
            losses.log(MessageHub.get_current_instance())

    def _clip_grad(self) -> None:
        if self.module_clip is None or self.learner is None:
            return super()._clip_grad()
        params = [p for g in self.optimizer.param_groups for p in g['params']]
        norm = self.module_clip(params, self.learner)
        self.message_hub.update_scalar(f'train/{self.grad_name}', float(norm))

    # ------------------------------------------------------------- sync
    def _get_synchronizer(self) -> GradientSynchronizer:
        if self.synchronizer is None:
            params = [p for g in self.optimizer.param_groups for p in g['params']]
            if self._stage is not None:
                own = {id(p) for p in self._stage.params}
                params = [p for p in params if id(p) in own]
            self.synchronizer = GradientSynchronizer(params, self.bucket_bytes,
                                                     overlap=self.overlap_grad_sync,
                                                     group=self.sync_group)
        return self.synchronizer

    def sync_gradients(self) -> None:
        """Average gradients over ranks in flat buckets, once per step
        (buckets launched early by the overlap are only waited for)."""
        if get_world_size(self.sync_group) > 1:
            self._get_synchronizer().sync()

    # ------------------------------------------------------------- state
    def state_dict(self) -> dict:
        state = super().state_dict()
        if self.learner is not None:
            state['local_learner'] = self.learner.state_dict()
        return state

    def load_state_dict(self, state_dict: dict) -> None:
        state_dict = dict(state_dict)
        heads = state_dict.pop('local_learner', None)
        if heads is not None and self.learner is not None:
            self.learner.load_state_dict(heads)
        super().load_state_dict(state_dict)


@OPTIM_WRAPPERS.register_module()
class LocalLearningOptimWrapper(LocalLearningMixin, OptimWrapper):
    """``OptimWrapper`` with local learning.

    Args:
        optimizer: the optimizer (over the model's and the heads' parameters).
        bucket_size_mb: size of the gradient all-reduce buckets.
        overlap_grad_sync: all-reduce a module's gradients as soon as they are
            final, during the rest of the forward (distributed runs only).
        **kwargs: ``accumulative_counts``, ``clip_grad`` of ``OptimWrapper``.
    """

    def __init__(self, optimizer, bucket_size_mb: float = 25.,
                 overlap_grad_sync: bool = False, local: Optional[dict] = None,
                 **kwargs) -> None:
        super().__init__(optimizer, **kwargs)
        self._init_local(bucket_size_mb, overlap_grad_sync, local)


@OPTIM_WRAPPERS.register_module()
class AmpLocalLearningOptimWrapper(LocalLearningMixin, AmpOptimWrapper):
    """``AmpOptimWrapper`` (autocast, loss scaler) with local learning.

    Args:
        loss_scale, dtype: as ``AmpOptimWrapper`` ('dynamic' or a float;
            'float16' | 'bfloat16').
        bucket_size_mb, overlap_grad_sync: as ``LocalLearningOptimWrapper``.
    """

    def __init__(self, optimizer, bucket_size_mb: float = 25., overlap_grad_sync: bool = False,
                 local: Optional[dict] = None, **kwargs) -> None:
        super().__init__(optimizer=optimizer, **kwargs)
        self._init_local(bucket_size_mb, overlap_grad_sync, local)


#: the standard wrapper types and their local-learning compositions
_LOCAL_TYPES = {
    'OptimWrapper': 'LocalLearningOptimWrapper',
    'LocalLearningOptimWrapper': 'LocalLearningOptimWrapper',
    'AmpOptimWrapper': 'AmpLocalLearningOptimWrapper',
    'AmpLocalLearningOptimWrapper': 'AmpLocalLearningOptimWrapper',
}


@OPTIM_WRAPPER_CONSTRUCTORS.register_module()
class LocalLearningOptimWrapperConstructor(DefaultOptimWrapperConstructor):
    """Builds the local heads (``optim_wrapper.local``) for the model, then the
    optimizer over model + heads, then the local-learning composition of the
    requested wrapper type (``OptimWrapper`` or ``AmpOptimWrapper``)."""

    def __init__(self, optim_wrapper_cfg: dict, paramwise_cfg: Optional[dict] = None) -> None:
        cfg = dict(optim_wrapper_cfg)
        local = cfg.pop('local', None)
        if local is None:
            raise ValueError('LocalLearningOptimWrapperConstructor needs optim_wrapper.local='
                             "dict(num_modules=K, method=dict(type='DGL'|'InfoPro'|'PredSim'))")
        if 'amp' in cfg:
            raise ValueError("optim_wrapper.amp is not a key: mixed precision is "
                             "optim_wrapper.type='AmpOptimWrapper' (what --amp sets), with "
                             "dtype='float16' or 'bfloat16'")
        kind = cfg.get('type', 'OptimWrapper')
        if kind not in _LOCAL_TYPES:
            raise ValueError(f'optim_wrapper.type={kind!r} cannot carry local learning: use '
                             f"one of {sorted(_LOCAL_TYPES)}")
        cfg['type'] = _LOCAL_TYPES[kind]
        if cfg['type'].startswith('Amp') and not torch.cuda.is_available():
            raise RuntimeError('mixed precision (--amp, optim_wrapper.type=AmpOptimWrapper) '
                               'needs a CUDA GPU and this machine has none: train without --amp')
        cfg['optimizer'] = _multi_tensor(cfg.get('optimizer'))
        super().__init__(cfg, paramwise_cfg)
        self.local_cfg = dict(local)

    def __call__(self, model: torch.nn.Module) -> OptimWrapper:
        base = model.module if is_model_wrapper(model) else model
        # split='memory' / memory_budget: measured here, explicit boundaries for the learner
        local = resolve_measured_split(base, self.local_cfg, self.optimizer_cfg)
        learner = build_learner(base, local)  # replaces an earlier learner of the model
        distribute_heads(learner, base)  # built after DDP wrapping: rank 0's heads everywhere
        wrapper = super().__call__(_ModelAndHeads(base, learner))
        pipeline = None
        if learner.cfg.pipeline is not None:
            from .pipeline_wrapper import build_pipeline
            pipeline = build_pipeline(model, learner, wrapper)
        wrapper.bind(learner, pipeline)
        return wrapper


def _multi_tensor(optimizer: Optional[dict]) -> Optional[dict]:
    """The optimizer with ``foreach=True`` unless the config sets ``foreach``.

    Local learning adds tens of small head tensors (ResNet-32 K=16: 105 for
    DGL's heads beside the model's 100), and torch's per-tensor optimizer
    loop costs a few ops each (on the CPU, where torch does not pick the
    multi-tensor path itself; on CUDA it does). The multi-tensor path does
    the same arithmetic per element: the updates are bit for bit those of
    the loop.
    """
    if not isinstance(optimizer, dict) or 'foreach' in optimizer:
        return optimizer
    from mmengine.registry import OPTIMIZERS
    cls = OPTIMIZERS.get(optimizer.get('type'))
    if cls is None or 'foreach' not in inspect.signature(cls.__init__).parameters:
        return optimizer
    return dict(optimizer, foreach=True)


class _ModelAndHeads(torch.nn.Module):
    """The parameters the optimizer gets: the model's, under their own names
    (so ``paramwise_cfg`` keys match as on the plain model), then the heads'
    as ``local_learner.*``. A view for the constructor only."""

    def __init__(self, model: torch.nn.Module, learner: torch.nn.Module) -> None:
        super().__init__()
        for name, p in model.named_parameters(recurse=False):
            self.register_parameter(name, p)
        for name, module in model.named_children():
            self.add_module(name, module)
        self.add_module('local_learner', learner)
