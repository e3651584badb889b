from .optim_wrapper import (LocalLearningOptimWrapper,
                            LocalLearningOptimWrapperConstructor)

__all__ = ['LocalLearningOptimWrapper', 'LocalLearningOptimWrapperConstructor']
