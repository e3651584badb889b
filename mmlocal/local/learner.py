"""``LocalLearner``: wires the parts that cut a model into K local modules.

config (``config.py``) -> probe (``probe.py``) -> split (``split.py``) ->
plan (``plan.py``) -> heads -> hooks (``step.py``), whose per-step work is
routed by ``router.py``. The learner owns the heads (an ``nn.Module``
beside the model, not inside it: the model's state_dict stays the
toolbox's) and offers one per-step interface to the optim wrapper::

    with learner.armed(backward=..., on_module_done=...) as step:
        ...  # the model's forward; local losses are backpropagated in it
    ...      # the task loss's backward
    log_vars = step.finish()
"""
import contextlib
import logging
import types
import weakref
from typing import Dict, Iterator, List, Optional, Union

import torch
import torch.nn as nn
from mmengine.logging import print_log

from mmlocal.models.heads.leap_head import LeapAugmentedHead
from mmlocal.structures import FeatureInfo, TaskInfo
from .bn_updates import per_path_momentum, restore_momentum
from .config import LocalConfig
from .head_runner import pff_strategy
from .isolation import IsolationCheck
from .plan import HeadPlan, build_head, plan_for
from .probe import default_probe_size, probe_blocks
from .recompute import module_blocks
from .router import ModuleDone
from .split import block_paths, resolve_boundaries
from .step import (Backward, LocalStep, StageRange, StepContext, StepSlot, TokenGrid,
                   install_hooks)
from .targets import build_target_adapter

_LEARNERS: 'weakref.WeakKeyDictionary[nn.Module, LocalLearner]' = weakref.WeakKeyDictionary()
#: state_dict prefix of the heads in checkpoints written before they moved out of the model
LEGACY_PREFIX = 'local_learner.'


def _legacy_loader(learner: 'LocalLearner'):
    """Checkpoints written before the heads moved out of the model carry
    them as ``local_learner.*`` model keys: load those into the heads."""
    def hook(state_dict, prefix, *args) -> None:
        legacy = prefix + LEGACY_PREFIX
        keys = [k for k in state_dict if k.startswith(legacy)]
        if keys:
            learner.load_state_dict({k[len(legacy):]: state_dict.pop(k) for k in keys})
    return hook


def _reread_leaps(learner: 'LocalLearner', incompatible_keys) -> None:
    learner._leaps_synced = False  # loaded copies carry their own ``synced`` flags


class LocalLearner(nn.Module):
    """The local heads of ``model`` and the hooks that train them.

    Args:
        model: the task model (mmseg/mmpretrain/mmdet ``BaseModel``, unwrapped).
        cfg: ``optim_wrapper.local`` (a dict, checked by ``LocalConfig.parse``).
    """

    def __init__(self, model: nn.Module, cfg: Union[dict, LocalConfig]) -> None:
        super().__init__()
        self.cfg = cfg = LocalConfig.parse(cfg)
        self._model = weakref.ref(model)  # the model owns the hooks; no cycle
        self.adapter = build_target_adapter(model, cfg.task)
        self.adapter.classes = cfg.num_classes or self.adapter.num_classes(model)
        self.task = TaskInfo(self.adapter.task, self.adapter.classes)
        try:
            backbone = model.get_submodule(cfg.backbone)
        except AttributeError:
            raise ValueError(f'{type(model).__name__} has no submodule {cfg.backbone!r}: '
                             'set local.backbone to the path of its backbone') from None
        paths = block_paths(model, cfg.backbone)
        self.probe = probe_blocks(model, cfg.backbone, paths,
                                  cfg.probe_size or default_probe_size(backbone))
        boundaries = resolve_boundaries(
            model, cfg.num_modules, cfg.boundaries, cfg.split, cfg.backbone,
            block_costs=lambda ps: [self.probe.costs[p] for p in ps])
        if cfg.hilo is not None and cfg.hilo.cascade > 1 and any(
                getattr(m, 'with_cp', False) for m in backbone.modules()):
            raise ValueError(
                'HiLo windows route gradients with input-only and parameter-only VJPs, which '
                "checkpointed blocks (with_cp=True) do not honour: set the backbone's "
                'with_cp=False; local.recompute keeps only module inputs instead')
        self.plan = plan_for(boundaries, paths, getattr(backbone, 'depth', None), cfg)
        self.plan.check_supervised()
        self.isolation = IsolationCheck(model, paths, boundaries)  # run by the first step
        self.heads = nn.ModuleDict()  # independent heads, by module name
        self.cascade_heads = nn.ModuleDict()
        for hp in self.plan.heads:
            feat = self.probe.feature(boundaries[hp.module])
            pff_strategy(hp.pff).check(hp.patches, feat.spatial, boundaries[hp.module])
            leap_feat = self.probe.feature(hp.leap[-1]) if hp.leap else None
            head = build_head(hp, feat, self.task, model, leap_feat)
            (self.heads if hp.kind == 'independent' else self.cascade_heads)[
                f'm{hp.module + 1}'] = head
        # after the heads: leap copies keep the live blocks' own momentum
        self._bn_changes = per_path_momentum(model, paths, boundaries, self.plan.passes) \
            if cfg.bn_updates == 'per-path' else []
        # blocks of the modules a window may recompute (1..K-2)
        self.module_blocks = module_blocks(paths, boundaries, model) \
            if cfg.recompute and self.plan.reach_back() > 0 else {}
        self._recompute_warned = False
        self._leaps_synced = False  # _sync_leaps has read the ``synced`` buffers
        self.register_load_state_dict_post_hook(_reread_leaps)
        self.slot = StepSlot()  # the armed step, which the hooks act for
        self._contexts: Dict[StageRange, StepContext] = {}  # built at the first step
        param = next(model.parameters(), None)
        self.to(param.device if param is not None else torch.device('cpu'))
        self._handles = install_hooks(self.slot, self.plan.boundaries, model, cfg.backbone,
                                      paths)
        self._handles.append(model._register_load_state_dict_pre_hook(_legacy_loader(self)))
        _LEARNERS[model] = self
        print_log(self.plan.format(), logger='current')

    @staticmethod
    def of(model: nn.Module) -> Optional['LocalLearner']:
        """The learner installed on ``model`` (None if there is none)."""
        return _LEARNERS.get(model)

    @property
    def model(self) -> nn.Module:
        return self._model()

    @property
    def boundaries(self) -> List[str]:
        return list(self.plan.boundaries)

    @property
    def features(self) -> List[FeatureInfo]:
        """What each boundary's heads see (channels, map size, stride)."""
        return [self.probe.feature(b) for b in self.plan.boundaries]

    @property
    def num_modules(self) -> int:
        return self.plan.num_modules

    def head(self, hp: HeadPlan) -> nn.Module:
        heads = self.heads if hp.kind == 'independent' else self.cascade_heads
        return heads[f'm{hp.module + 1}']

    def remove(self) -> None:
        """Uninstall the hooks (the heads stay)."""
        for h in self._handles:
            h.remove()
        self._handles = []
        restore_momentum(self._bn_changes)
        self._bn_changes = []
        if _LEARNERS.get(self.model) is self:
            del _LEARNERS[self.model]


    # ------------------------------------------------------------------ steps
    @contextlib.contextmanager
    def armed(self, backward: Backward, on_module_done: Optional[ModuleDone] = None,
              stage: Optional[StageRange] = None) -> Iterator[LocalStep]:
        """Arm the hooks for one training forward of the modules in ``stage``
        (default: all); yields the step, whose ``finish()`` is called after
        the task loss's backward."""
        if self.training != self.model.training:  # follow Runner's train()/eval()
            self.train(self.model.training)
        self._sync_leaps()
        step = LocalStep(self.context(stage), backward, on_module_done)
        check = self.isolation if not self.isolation.done else None
        step.isolation = check
        self.slot.step = step
        try:
            with check.recording(self.model) if check is not None else contextlib.nullcontext():
                yield step
        finally:
            self.slot.step = None

    @property
    def current_step(self) -> Optional[LocalStep]:
        """The armed step (None outside ``armed``)."""
        return self.slot.step

    def context(self, stage: Optional[StageRange] = None) -> StepContext:
        """What a step of the modules in ``stage`` (default: all) is given;
        built once per stage, at the first step (after the engine has
        converted the heads to SyncBN where it does)."""
        stage = stage or StageRange(0, self.plan.num_modules - 1)
        if stage not in self._contexts:
            probe = self.probe
            self._contexts[stage] = StepContext(
                plan=self.plan,
                heads=types.MappingProxyType({hp.key: self.head(hp) for hp in self.plan.heads}),
                grid=TokenGrid(probe.grid, probe.size, probe.extra_tokens),
                adapter=self.adapter, recompute=self.cfg.recompute,
                recompute_blocks=types.MappingProxyType(self.module_blocks), stage=stage,
                check_finite=self.cfg.check_finite,
                on_finish=self._after_step)
        return self._contexts[stage]

    def _after_step(self, step: LocalStep) -> None:
        if step.recompute is not None and step.recompute.broken:
            self.warn_recompute(step.recompute.broken)
        self.update_ema(step.stage)

    def warn_recompute(self, broken: dict) -> None:
        """``recompute='auto'``: say once which modules keep their graphs."""
        if self._recompute_warned:
            return
        self._recompute_warned = True
        why = '; '.join(f'm{m + 1}: {w}' for m, w in sorted(broken.items()))
        print_log(f'local.recompute: these modules keep their graphs, their blocks cannot be '
                  f're-run in sequence ({why})', logger='current', level=logging.WARNING)

    def leap_heads(self) -> List[LeapAugmentedHead]:
        """MLAAN leap-augmented heads, in module order."""
        return [h for h in self.modules() if isinstance(h, LeapAugmentedHead)]

    def _sync_leaps(self) -> None:
        """Copies take the live blocks' weights at the first armed forward,
        after the Runner's weight init (a ``synced`` buffer keeps resumed
        copies intact). The buffers are read once, not every step (a host
        sync each), and again after a state dict is loaded."""
        if self._leaps_synced:
            return
        for h in self.leap_heads():
            if not bool(h.synced):
                h.sync_from([self.model.get_submodule(p) for p in h.sources])
        self._leaps_synced = True

    def update_ema(self, stage: Optional[StageRange] = None) -> None:
        """MLAAN: EMA copies follow their live blocks once per iteration,
        before the optimizer step (as the authors' code); with ``stage``,
        only the heads of its modules (a pipeline stage's own)."""
        for hp in self.plan.heads:
            if hp.ema and (stage is None or hp.module in stage):
                head = self.head(hp)
                head.update_ema(self.model.get_submodule(head.sources[0]))
