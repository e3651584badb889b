"""``build_learner``: the work that reads the model, then the wiring.

config (``config.py``) -> probe (``probe.py``) -> split (``split.py``) ->
plan (``plan.py``) -> heads (``build_heads``) -> BN momenta
(``bn_updates.py``) -> ``LocalLearner``, which only installs what it is
given. A model carries one learner: building one removes the earlier one
first, so the probe and the momenta see the model as the toolbox built it.
"""
from typing import Dict, Union

import torch
import torch.nn as nn
from mmengine.logging import print_log

from mmlocal.structures import TaskInfo
from .bn_updates import per_path_momentum, restore_momentum
from .config import LocalConfig
from .head_runner import pff_strategy
from .learner import LocalLearner
from .plan import LocalPlan, build_head, plan_for
from .probe import ProbeResult, default_probe_size, probe_blocks
from .split import block_paths, resolve_boundaries
from .targets import build_target_adapter


def build_learner(model: nn.Module, cfg: Union[dict, LocalConfig]) -> LocalLearner:
    """The local learner of ``model`` (unwrapped) for ``optim_wrapper.local``
    (a dict, checked by ``LocalConfig.parse``), installed on the model; an
    earlier learner of the model is removed first."""
    old = LocalLearner.of(model)
    if old is not None:
        old.remove()
    cfg = LocalConfig.parse(cfg)
    adapter = build_target_adapter(model, cfg.task)
    adapter.classes = cfg.num_classes or adapter.num_classes(model)
    try:
        backbone = model.get_submodule(cfg.backbone)
    except AttributeError:
        raise ValueError(f'{type(model).__name__} has no submodule {cfg.backbone!r}: '
                         'set local.backbone to the path of its backbone') from None
    blocks = block_paths(model, cfg.backbone)
    probe = probe_blocks(model, cfg.backbone, blocks,
                         cfg.probe_size or default_probe_size(backbone))
    boundaries = resolve_boundaries(
        model, cfg.num_modules, cfg.boundaries, cfg.split, cfg.backbone,
        block_costs=lambda ps: [probe.costs[p] for p in ps])
    if cfg.hilo is not None and cfg.hilo.cascade > 1 and any(
            getattr(m, 'with_cp', False) for m in backbone.modules()):
        raise ValueError(
            'HiLo windows route gradients with input-only and parameter-only VJPs, which '
            "checkpointed blocks (with_cp=True) do not honour: set the backbone's "
            'with_cp=False; local.recompute keeps only module inputs instead')
    plan = plan_for(boundaries, blocks, getattr(backbone, 'depth', None), cfg)
    plan.check_supervised()
    heads = build_heads(plan, probe, TaskInfo(adapter.task, adapter.classes), model)
    param = next(model.parameters(), None)
    device = param.device if param is not None else torch.device('cpu')
    for head in heads.values():
        head.to(device)
    # after the heads: leap copies keep the live blocks' own momentum
    bn_changes = per_path_momentum(model, blocks, boundaries, plan.passes) \
        if cfg.bn_updates == 'per-path' else []
    try:
        learner = LocalLearner(model, cfg, blocks, probe, plan, heads, adapter, bn_changes)
    except Exception:
        restore_momentum(bn_changes)
        raise
    print_log(plan.format(), logger='current')
    return learner


def build_heads(plan: LocalPlan, probe: ProbeResult, task: TaskInfo,
                model: nn.Module) -> Dict[str, nn.Module]:
    """The head of every ``HeadPlan`` of ``plan``, by its ``key``, on the
    features the probe saw at its boundary (MLAAN: at its last copied
    block); each PFF variant checks its patches against the feature."""
    heads = {}
    for hp in plan.heads:
        at = plan.boundaries[hp.module]
        feat = probe.feature(at)
        pff_strategy(hp.pff).check(hp.patches, feat.spatial, at)
        leap_feat = probe.feature(hp.leap[-1]) if hp.leap else None
        heads[hp.key] = build_head(hp, feat, task, model, leap_feat)
    return heads
