from mmlocal.structures import FeatureInfo, LocalTargets, TaskInfo
from .config import LocalConfig, LocalConfigError
from .learner import LocalLearner
from .build import build_heads, build_learner
from .methods import DGL, InfoPro, PredSim
from .plan import HeadPlan, LocalPlan, build_plan
from .router import GradientRouter
from .split import block_paths, resolve_boundaries
from .targets import build_target_adapter
from .det_targets import BoxTargets  # registers the box-target adapter

__all__ = [
    'LocalLearner', 'build_learner', 'build_heads', 'LocalConfig', 'LocalConfigError', 'DGL',
    'InfoPro', 'PredSim',
    'FeatureInfo', 'TaskInfo', 'LocalTargets', 'HeadPlan', 'LocalPlan', 'build_plan',
    'GradientRouter', 'block_paths', 'resolve_boundaries', 'build_target_adapter', 'BoxTargets'
]
