from . import hooks  # noqa: F401  (registers RandomStateHook, seed_worker)
from .optim_wrapper import (LocalLearningOptimWrapper,
                            LocalLearningOptimWrapperConstructor)

__all__ = ['LocalLearningOptimWrapper', 'LocalLearningOptimWrapperConstructor']
