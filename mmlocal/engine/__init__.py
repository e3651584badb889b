from . import hooks  # noqa: F401  (registers LocalLossHook, RandomStateHook, seed_worker)
from .optim_wrapper import (LocalLearningOptimWrapper,
                            LocalLearningOptimWrapperConstructor)
from .pipeline_wrapper import MMPipelineParallel
from .pipeline_hook import PipelineHook
from .pipeline_sampler import PipelineSampler

__all__ = ['LocalLearningOptimWrapper', 'LocalLearningOptimWrapperConstructor',
           'MMPipelineParallel', 'PipelineHook', 'PipelineSampler']
