from .learner import LocalLearner
from .methods import DGL, FeatureInfo, InfoPro, PredSim, TaskInfo
from .split import block_paths, resolve_boundaries
from .targets import LocalTargets, build_target_adapter
from .det_targets import BoxTargets  # noqa: E402  (registers the detection adapter)

__all__ = [
    'LocalLearner', 'DGL', 'InfoPro', 'PredSim', 'FeatureInfo', 'TaskInfo',
    'block_paths', 'resolve_boundaries', 'LocalTargets', 'build_target_adapter',
    'BoxTargets'
]
