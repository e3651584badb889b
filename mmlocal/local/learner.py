"""``LocalLearner``: the installed parts that cut a model into K local modules.

``build_learner`` (``build.py``) does config -> probe -> split -> plan ->
heads; the learner is given their results and installs the hooks
(``step.py``), whose per-step work is routed by ``router.py``. It owns the
heads (an ``nn.Module`` beside the model, not inside it: the model's
state_dict stays the toolbox's) and offers one per-step interface to the
optim wrapper::

    with learner.armed(backward=..., on_module_done=...) as step:
        ...  # the model's forward; local losses are backpropagated in it
    ...      # the task loss's backward
    log_vars = step.finish()
"""
import contextlib
import logging
import types
import weakref
from typing import Dict, Iterator, List, Mapping, Optional, Sequence, Tuple

import torch.nn as nn
from mmengine.logging import print_log
from torch.nn.modules.batchnorm import _BatchNorm

from mmlocal.models.heads.leap_head import LeapAugmentedHead
from mmlocal.structures import FeatureInfo, TaskInfo
from .bn_updates import restore_momentum
from .config import LocalConfig
from .isolation import IsolationCheck
from .plan import HeadPlan, LocalPlan
from .probe import ProbeResult
from .recompute import module_blocks
from .router import ModuleDone
from .step import (Backward, LocalStep, StageRange, StepContext, StepSlot, TokenGrid,
                   install_hooks)
from .targets import TargetAdapter

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

    Wiring only: ``build_learner`` (``build.py``) reads the model and the
    config and gives the learner what it installs.

    Args:
        model: the task model (mmseg/mmpretrain/mmdet ``BaseModel``, unwrapped).
        cfg: the checked ``optim_wrapper.local``.
        blocks: the backbone's blocks in execution order (``block_paths``).
        probe: what the probe saw of every block.
        plan: the plan; its boundaries are blocks of ``blocks``.
        heads: the head of every ``HeadPlan`` of ``plan``, by its ``key``.
        adapter: the target adapter, its ``classes`` set.
        bn_changes: BN layers whose momentum the plan changed, with their
            own (``bn_updates.per_path_momentum``); ``remove()`` restores them.
    """

    def __init__(self, model: nn.Module, cfg: LocalConfig, blocks: Sequence[str],
                 probe: ProbeResult, plan: LocalPlan, heads: Mapping[str, nn.Module],
                 adapter: TargetAdapter,
                 bn_changes: Sequence[Tuple[_BatchNorm, float]] = ()) -> None:
        super().__init__()
        if not isinstance(cfg, LocalConfig):
            raise TypeError(f'LocalLearner takes a parsed LocalConfig, not {type(cfg).__name__}: '
                            'build a learner from a config with '
                            'mmlocal.local.build_learner(model, cfg)')
        want = [hp.key for hp in plan.heads]
        if sorted(heads) != sorted(want):
            raise ValueError(f'LocalLearner needs one head per HeadPlan key {want}, got '
                             f'{sorted(heads)}: build them with build_heads(plan, ...)')
        missing = [b for b in plan.boundaries if b not in blocks]
        if missing:
            raise ValueError(f'the plan cuts at {missing}, which are not among the blocks '
                             'given: build the plan from the same block list')
        if _LEARNERS.get(model) is not None:
            raise RuntimeError(f'{type(model).__name__} already has a local learner: remove() '
                               'it first (build_learner does)')
        self.cfg = cfg
        self._model = weakref.ref(model)  # the model owns the hooks; no cycle
        self.adapter = adapter
        self.task = TaskInfo(adapter.task, adapter.classes)
        self.probe = probe
        self.plan = plan
        self.heads = nn.ModuleDict()  # independent heads, by module name
        self.cascade_heads = nn.ModuleDict()
        for hp in plan.heads:
            (self.heads if hp.kind == 'independent' else self.cascade_heads)[
                f'm{hp.module + 1}'] = heads[hp.key]
        self.isolation = IsolationCheck(model, blocks, plan.boundaries)  # run by the first step
        # blocks of the modules a window may recompute (1..K-2)
        self.module_blocks = module_blocks(blocks, plan.boundaries, model) \
            if cfg.recompute and plan.reach_back() > 0 else {}
        self._bn_changes = list(bn_changes)
        self._recompute_warned = False
        self._leaps_synced = False  # _sync_leaps has read the ``synced`` buffers
        self.register_load_state_dict_post_hook(_reread_leaps)
        self.slot = StepSlot()  # the armed step, which the hooks act for
        self._contexts: Dict[StageRange, StepContext] = {}  # built at the first step
        self._handles = install_hooks(self.slot, list(plan.boundaries), model, cfg.backbone,
                                      blocks)
        self._handles.append(model._register_load_state_dict_pre_hook(_legacy_loader(self)))
        _LEARNERS[model] = self

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
