"""``LocalLearningOptimWrapper``: one optimizer step over K local backward passes.

mmengine's ``train_step`` runs ``optim_context`` around the forward and then
``update_params(task_loss)``. Local learning backpropagates each module's
loss *during* the forward, so this wrapper

* arms the model's ``LocalLearner`` hooks inside ``optim_context`` only;
* offers ``local_backward``: the same loss scaling as the task loss
  (gradient accumulation, AMP) without counting an extra iteration;
* after the task backward lets the learner close its last cascade window,
  synchronises gradients across ranks once (DDP's reducer cannot follow
  several backward passes per forward, and the heads were added after
  wrapping; see ``grad_sync.py``), then clips, steps and zeroes as usual;
* pushes every module's local losses to the message hub
  (``train/local.m3.loss_cls``...) so loggers and TensorBoard plot them.
"""
import contextlib
from typing import Dict, Optional

import torch
from mmengine.dist import get_world_size, is_distributed
from mmengine.logging import MessageHub
from mmengine.model import is_model_wrapper
from mmengine.optim import DefaultOptimWrapperConstructor, OptimWrapper

from mmlocal.registry import OPTIM_WRAPPER_CONSTRUCTORS, OPTIM_WRAPPERS
from .grad_sync import GradientSynchronizer


@OPTIM_WRAPPERS.register_module()
class LocalLearningOptimWrapper(OptimWrapper):
    """Optimizer wrapper for supervised local learning.

    Args:
        optimizer: the optimizer (built over model + local heads).
        amp: mixed precision on CUDA (``tools/train.py --amp`` sets it).
        dtype: autocast dtype for AMP ('float16' or 'bfloat16').
        loss_scale: 'dynamic' or a fixed float for the AMP grad scaler.
        bucket_size_mb: size of the gradient all-reduce buckets.
        overlap_grad_sync: all-reduce a module's gradients as soon as they are
            final, during the rest of the forward (distributed runs only).
        **kwargs: ``accumulative_counts``, ``clip_grad`` of ``OptimWrapper``.
    """

    def __init__(self, optimizer, amp: bool = False, dtype: str = 'float16',
                 loss_scale='dynamic', bucket_size_mb: float = 25.,
                 overlap_grad_sync: bool = False,
                 local: Optional[dict] = None, **kwargs) -> None:
        if local is not None:
            raise ValueError(
                "optim_wrapper.local needs optim_wrapper.constructor="
                "'LocalLearningOptimWrapperConstructor' (it builds the local heads "
                'before the optimizer collects parameters); add it to the config')
        super().__init__(optimizer, **kwargs)
        self.learner = None
        self.amp = amp
        self.bucket_bytes = int(bucket_size_mb * 2**20)
        self.overlap_grad_sync = overlap_grad_sync
        self.synchronizer: Optional[GradientSynchronizer] = None
        self.loss_scaler = None
        if amp:
            if not torch.cuda.is_available():
                raise RuntimeError('AMP (--amp / optim_wrapper.amp=True) needs a CUDA GPU; '
                                   'this machine has none: train without --amp')
            self.cast_dtype = getattr(torch, dtype)
            if loss_scale == 'dynamic':
                self.loss_scaler = torch.amp.GradScaler('cuda')
            else:
                self.loss_scaler = torch.amp.GradScaler('cuda', init_scale=float(loss_scale),
                                                        growth_interval=2**31 - 1)

    def bind(self, learner) -> None:
        self.learner = learner
        learner.bind_backward(self.local_backward)

    # ----------------------------------------------------------- context
    @contextlib.contextmanager
    def optim_context(self, model: torch.nn.Module):
        with contextlib.ExitStack() as stack:
            if is_model_wrapper(model) and hasattr(model, 'no_sync'):
                stack.enter_context(model.no_sync())  # we sync once, after all backwards
            if self._distributed():
                self._get_synchronizer().begin(will_step=self.should_sync())
            if self.amp:
                stack.enter_context(torch.autocast('cuda', dtype=self.cast_dtype))
            if self.learner is not None:
                stack.enter_context(self.learner.armed())
            yield

    # ---------------------------------------------------------- backward
    def _scaled(self, loss: torch.Tensor) -> torch.Tensor:
        return self.loss_scaler.scale(loss) if self.loss_scaler is not None else loss

    def local_backward(self, loss: torch.Tensor) -> None:
        """Backward of a local loss inside the forward: scaled like the task
        loss of this iteration, not counted as an iteration."""
        self._scaled(self.scale_loss(loss)).backward()

    def backward(self, loss: torch.Tensor, **kwargs) -> None:
        self._scaled(loss).backward(**kwargs)
        self._inner_count += 1

    def update_params(self, loss: torch.Tensor, step_kwargs: Optional[Dict] = None,
                      zero_kwargs: Optional[Dict] = None) -> None:
        step_kwargs = step_kwargs or {}
        zero_kwargs = zero_kwargs or {}
        loss = self.scale_loss(loss)
        self.backward(loss)
        if self.learner is not None:
            self.learner.finish()
        if self.should_update():
            self.sync_gradients()
            self.step(**step_kwargs)
            self.zero_grad(**zero_kwargs)
        self._log_local()

    # ------------------------------------------------------------- sync
    @staticmethod
    def _distributed() -> bool:
        return is_distributed() and get_world_size() > 1

    def _get_synchronizer(self) -> GradientSynchronizer:
        if self.synchronizer is None:
            params = [p for g in self.optimizer.param_groups for p in g['params']]
            self.synchronizer = GradientSynchronizer(params, self.bucket_bytes,
                                                     overlap=self.overlap_grad_sync)
            if self.overlap_grad_sync and self.learner is not None:
                self.learner.on_module_done = self.synchronizer.module_done
        return self.synchronizer

    def sync_gradients(self) -> None:
        """Average gradients over ranks in flat buckets, once per step
        (buckets launched early by the overlap are only waited for)."""
        if self._distributed():
            self._get_synchronizer().sync()

    # ------------------------------------------------------------- step
    def step(self, **kwargs) -> None:
        if self.loss_scaler is None:
            return super().step(**kwargs)
        self.loss_scaler.unscale_(self.optimizer)
        if self.clip_grad_kwargs:
            self._clip_grad()
        self.loss_scaler.step(self.optimizer, **kwargs)
        self.loss_scaler.update()

    def state_dict(self) -> dict:
        state = super().state_dict()
        if self.loss_scaler is not None:
            state['loss_scaler'] = self.loss_scaler.state_dict()
        return state

    def load_state_dict(self, state_dict: dict) -> None:
        state_dict = dict(state_dict)
        scaler = state_dict.pop('loss_scaler', None)
        if scaler is not None and self.loss_scaler is not None:
            self.loss_scaler.load_state_dict(scaler)
        super().load_state_dict(state_dict)

    # -------------------------------------------------------------- logs
    def _log_local(self) -> None:
        if self.learner is None or not self.learner.log_vars:
            return
        hub = MessageHub.get_current_instance()
        for key, value in self.learner.log_vars.items():
            hub.update_scalar(f'train/{key}', float(value))


@OPTIM_WRAPPER_CONSTRUCTORS.register_module()
class LocalLearningOptimWrapperConstructor(DefaultOptimWrapperConstructor):
    """Builds the local heads and hooks (``optim_wrapper.local``) on the model,
    then the optimizer over model + heads: the last point before the
    optimizer collects parameters."""

    def __init__(self, optim_wrapper_cfg: dict, paramwise_cfg: Optional[dict] = None) -> None:
        cfg = dict(optim_wrapper_cfg)
        local = cfg.pop('local', None)
        if local is None:
            raise ValueError('LocalLearningOptimWrapperConstructor needs optim_wrapper.local='
                             "dict(num_modules=K, method=dict(type='DGL'|'InfoPro'|'PredSim'))")
        cfg.setdefault('type', 'LocalLearningOptimWrapper')
        super().__init__(cfg, paramwise_cfg)
        self.local_cfg = dict(local)

    def __call__(self, model: torch.nn.Module) -> OptimWrapper:
        from mmlocal.local import LocalLearner
        base = model.module if is_model_wrapper(model) else model
        old = getattr(base, 'local_learner', None)
        if old is not None:
            old.remove()
            del base.local_learner
        learner = LocalLearner(base, **self.local_cfg)
        wrapper = super().__call__(model)
        if not isinstance(wrapper, LocalLearningOptimWrapper):
            raise TypeError("optim_wrapper.local needs type='LocalLearningOptimWrapper', "
                            f'got {type(wrapper).__name__}')
        wrapper.bind(learner)
        return wrapper
