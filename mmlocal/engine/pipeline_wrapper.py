"""``MMPipelineParallel``: the model wrapper of pipelined local learning,
and ``build_pipeline``, which the optim wrapper constructor calls."""
from typing import Dict, Optional

import torch
import torch.distributed as torch_dist
import torch.nn as nn
from mmengine.dist import get_world_size, is_distributed
from mmengine.model import is_model_wrapper
from mmengine.registry import MODEL_WRAPPERS

from mmlocal.local.config import LocalConfigError
from .pipeline import Pipeline


@MODEL_WRAPPERS.register_module()
class MMPipelineParallel(nn.Module):
    """Model wrapper of pipelined local learning
    (``model_wrapper_cfg=dict(type='MMPipelineParallel')``): ``train_step``
    is a tick of the pipeline the optim wrapper is bound to; val/test steps
    run the whole (gathered) model.

    Every rank starts from rank 0's weights (broadcast here, as DDP does).
    """

    def __init__(self, module: nn.Module, **kwargs) -> None:
        super().__init__()
        if kwargs:
            raise TypeError(f'MMPipelineParallel takes no {sorted(kwargs)}')
        self.module = module
        self._pipeline: Optional[Pipeline] = None  # the last train_step's
        if is_distributed() and get_world_size() > 1:
            with torch.no_grad():
                for t in list(module.parameters()) + list(module.buffers()):
                    torch_dist.broadcast(t.data, src=0)

    def train_step(self, data, optim_wrapper) -> Dict[str, torch.Tensor]:
        pipeline = getattr(optim_wrapper, 'pipeline', None)
        if pipeline is None:
            raise RuntimeError('MMPipelineParallel needs optim_wrapper.local.pipeline='
                               'dict(stages=S) with the LocalLearningOptimWrapperConstructor')
        self._pipeline = pipeline
        return pipeline.step(data, optim_wrapper)

    def val_step(self, data) -> list:
        if self._pipeline is not None and self._pipeline.taken:
            raise RuntimeError('validation of a pipelined model that was not drained: add '
                               "custom_hooks=[dict(type='PipelineHook')] to the config")
        return self.module.val_step(data)

    def test_step(self, data) -> list:
        return self.module.test_step(data)

    def forward(self, *args, **kwargs):
        return self.module(*args, **kwargs)


def build_pipeline(model: nn.Module, learner, optim_wrapper) -> Pipeline:
    """This rank's stage of ``local.pipeline`` (the constructor binds it to
    the optim wrapper)."""
    if get_world_size() > 1 and not isinstance(model, MMPipelineParallel):
        raise LocalConfigError(
            "local.pipeline needs the model wrapped for the pipeline: add "
            "model_wrapper_cfg=dict(type='MMPipelineParallel') to the config "
            f'(the model is wrapped in {type(model).__name__})')
    base = model.module if is_model_wrapper(model) else model
    return Pipeline(base, learner, optim_wrapper)
