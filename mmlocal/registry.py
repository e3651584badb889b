"""Registries of mmlocal.

mmlocal serves three toolboxes at once, so its classes are registered in
mmengine's *root* registries: a child registry (``mmseg``, ``mmpretrain``,
``mmdet`` scope) falls back to its root, so a config of any scope finds
``LocalLearningOptimWrapper``, ``CifarResNet`` or ``InfoPro`` by name.
Registries that exist only in mmlocal are created here.
"""
from mmengine.registry import FUNCTIONS, HOOKS, MODELS, OPTIM_WRAPPER_CONSTRUCTORS
from mmengine.registry import OPTIM_WRAPPERS, Registry

#: Local learning methods (DGL, InfoPro, PredSim): build one head per module.
LOCAL_METHODS = Registry('local method', locations=['mmlocal.local.methods'])
#: Backbone -> ordered list of its block paths (split presets).
BLOCK_LISTS = Registry('block list', locations=['mmlocal.local.block_lists'])
#: What ``local.split`` accepts: 'auto', 'blocks', 'memory' and the papers' presets.
SPLITS = Registry('split', locations=['mmlocal.local.split'])
#: Backbone class -> the papers' preset that ``split='auto'`` takes for it.
SPLIT_PRESETS = Registry('split preset', locations=['mmlocal.local.split'])
#: Task -> how targets are read from data samples (classification, segmentation, ...).
TARGET_ADAPTERS = Registry('target adapter', locations=['mmlocal.local.targets'])
#: PFF variant name ('paper', 'quadrant', 'output') -> its strategy: how a
#: planned head runs on patches and what it does to the decoder.
PFF_VARIANTS = Registry('pff variant', locations=['mmlocal.local.head_runner'])
#: Task ('classification', 'segmentation', 'detection') -> its local heads'
#: defaults: psi, decoder, the head class each method's head becomes.
LOCAL_TASKS = Registry('local task', locations=['mmlocal.local.tasks'])
#: mmdet dense head type -> its config on one feature level (box-aware local heads).
DENSE_HEAD_LEVELS = Registry('dense head level', locations=['mmlocal.models.heads.det_heads'])
#: Toolbox scope ('mmseg', 'mmpretrain', 'mmdet') -> what its tools do differently.
TOOLBOXES = Registry('toolbox', locations=['mmlocal.apis.toolboxes'])

__all__ = [
    'MODELS', 'HOOKS', 'FUNCTIONS', 'OPTIM_WRAPPERS', 'OPTIM_WRAPPER_CONSTRUCTORS',
    'LOCAL_METHODS', 'PFF_VARIANTS', 'LOCAL_TASKS', 'DENSE_HEAD_LEVELS', 'BLOCK_LISTS', 'SPLITS',
    'SPLIT_PRESETS', 'TARGET_ADAPTERS', 'TOOLBOXES'
]
