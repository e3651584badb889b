from .optim_wrapper import (LocalLearningOptimWrapper,
                            LocalLearningOptimWrapperConstructor)
from .pipeline import MMPipelineParallel, PipelineHook

__all__ = ['LocalLearningOptimWrapper', 'LocalLearningOptimWrapperConstructor',
           'MMPipelineParallel', 'PipelineHook']
