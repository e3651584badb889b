"""The local plan: which heads exist, where each loss stops, with which weights.

Everything a local-learning method decides *per module* lives here, as data:
the independent and cascade heads (HPFF/MLAAN, ALGORITHMS.md §5.1-5.2, §6.3),
the modules each loss reaches, the HiLo weights, the loss weights after the
schedule over the module index (InfoPro's lambda, §2.1-2.2), PFF (§5.1, §5.3,
§5.4) and MLAAN's leap copies and EMA branches (§6.3-6.5). ``build_plan`` is
pure (boundaries and block paths in, a frozen plan out; no model forward), so
the plan can be printed (``tools/analysis/print_local_plan.py``), tested
against the authors' loops and checked before anything trains.

Module indices are 0-based (j); names are 1-based (``m{j+1}``). With ``K``
modules, 0..K-2 are local and K-1 ends in the task head.

Two conventions for the stem (ALGORITHMS.md §1.1), ``stem``:

* ``'module'`` (InfoPro's code): when the first boundary is the stem, the
  stem is local module 0 with its own heads. The schedule index of module j
  is m = j, r = m / (K-2).
* ``'merged'`` (HPFF's and MLAAN's code): the stem is in no segment. No head
  reads it; the losses of the first segment (module 1) reach through it.
  Segment i = j - 1 and r = i / (K-2), so r never reaches 1 (§5.2).

Where a module sits on the schedule, ``schedule``:

* ``'index'`` (default): r = the module's (or segment's) index / (K-2), as
  above (InfoPro's ``networks/resnet.py``, HPFF's ``resnetInfoPro_HPFF.py``).
* ``'stage'`` (MLAAN's ``CIFAR-SVHN-STL/networks/resnetInfoProbin.py``,
  lines 329-330): r = the backbone stage (1-based ``layer`` number) of the
  module's last block / (S-2), S the number of segments (ML's
  ``local_module_num``, K-1 with a merged stem). Independent and cascade
  heads of a segment share it.

``passes``: how often the authors' HiLo/MLAAN loops run each module's
blocks in one step (§5.2, §6.3): once on the independent (x) path, once more
for every cascade window containing it, the task's closing window included;
the stem runs once (the y path starts from a clone of its output). Their BN
running statistics are updated that often; ``bn_updates='per-path'``
reproduces it.
"""
import re
from dataclasses import dataclass, field, replace
from typing import Dict, List, Mapping, Optional, Sequence, Tuple, Union

from mmlocal.structures import FeatureInfo, TaskInfo
from .block_lists import stem_of
from .config import EMABranch, HeadKind, LocalConfig, LocalConfigError, PFFMode, Stem
from .head_runner import pff_strategy
from .methods import build_method

_STAGE = re.compile(r'layer(\d+)\.\d+$')


@dataclass(frozen=True)
class HeadPlan:
    """One local head. ``reach``..``module`` are the modules its loss trains."""
    key: str
    module: int
    kind: HeadKind
    method: dict
    weight: float
    reach: int
    loss_weights: Dict[str, float]
    patches: int = 1
    #: '' (no PFF), 'paper' (the same head on n x n patches of the feature,
    #: predictions fused: HPFF paper §5.1), 'quadrant' (HPFF CIFAR code §5.3:
    #: psi on the full map, n^2 quadrant decoders, BCEs summed), 'output'
    #: (HPFF ImageNet code §5.4: the reconstruction split, BCEs summed)
    pff: str = ''
    pff_mode: PFFMode = 'sequential'  # 'paper': patches one at a time, or batched
    leap: Tuple[str, ...] = ()
    ema: bool = False  # this head's EMA branch follows its live block once per step
    momentum: float = 0.995
    #: the EMA branch of a leap head: 'frozen' (MLAAN's resnetDGLbin.py,
    #: resnetMLAAN.py) or 'trained' by the optimizer as well (resnetInfoProbin.py)
    ema_branch: EMABranch = 'frozen'
    r: Optional[float] = None  # the schedule position (None: not scheduled)

    @property
    def total(self) -> float:
        """weight x the sum of the positive loss weights."""
        return self.weight * sum(v for v in self.loss_weights.values() if v > 0)


@dataclass(frozen=True)
class LocalPlan:
    boundaries: Tuple[str, ...]
    heads: Tuple[HeadPlan, ...]
    task_reach: int
    task_weight_below: float
    stem: Stem = 'module'
    settings: Dict[str, str] = field(default_factory=dict)
    #: per module, how often the authors' loop runs its blocks in one step
    #: (1 everywhere without cascade windows; see the module docstring)
    passes: Tuple[int, ...] = ()

    @property
    def num_modules(self) -> int:
        return len(self.boundaries) + 1

    def at(self, module: int) -> List[HeadPlan]:
        """Heads reading module ``module``'s output, independent first."""
        return [h for h in self.heads if h.module == module]

    def reach_back(self) -> int:
        """How many modules before the current one a loss reaches (0: none,
        every module's graph can be freed right after its own heads)."""
        spans = [h.module - h.reach for h in self.heads]
        if self.task_weight_below > 0:
            spans.append(self.num_modules - 1 - self.task_reach)
        return max(spans, default=0)

    def last_user(self) -> List[int]:
        """For each module, the last module whose loss still needs its graph
        (K-1: the task loss or the end of the iteration)."""
        last = list(range(self.num_modules))
        for h in self.heads:
            for m in range(h.reach, h.module + 1):
                last[m] = max(last[m], h.module)
        if self.task_weight_below > 0:
            for m in range(self.task_reach, self.num_modules):
                last[m] = self.num_modules - 1
        return last

    def module_weights(self) -> List[float]:
        """Total loss weight reaching each module (the task counts 1 at the
        last module and ``task_weight_below`` below it)."""
        total = [0.] * self.num_modules
        for h in self.heads:
            for m in range(h.reach, h.module + 1):
                total[m] += h.total
        total[-1] += 1.
        for m in range(self.task_reach, self.num_modules - 1):
            total[m] += self.task_weight_below
        return total

    def check_supervised(self) -> None:
        """Every module must be reached by a loss of positive total weight,
        and every EMA branch must sit in a head that is trained."""
        totals = self.module_weights()
        for m, t in enumerate(totals):
            if t > 0:
                continue
            name = self.boundaries[m] if m < len(self.boundaries) else 'the last module'
            reaching = [h for h in self.heads if h.reach <= m <= h.module]
            if reaching:
                why = '; '.join(f'local.{h.key} weight {h.weight:g} x loss weights '
                                f'{_fmt_weights(h.loss_weights)}'
                                + (f' (r = {h.r:.4g})' if h.r is not None else '')
                                + f' from {_method_str(h.method)}' for h in reaching)
            else:
                why = ('no head reads it or reaches back to it '
                       f"(stem='{self.stem}', {self.settings.get('hilo', 'no hilo')})")
            raise LocalConfigError(
                f'local module m{m + 1} ({name}) would get no gradient: {why}. Its block '
                'would stay at its initialisation. Give the schedule non-zero end values '
                '(e.g. InfoPro recon_weights/task_weights), or a head/window that reaches it.')
        for h in self.heads:
            if h.ema and h.total <= 0:
                raise LocalConfigError(
                    f'the MLAAN EMA branch sits in head local.{h.key} whose loss weight is 0 '
                    f'({_fmt_weights(h.loss_weights)}): the EMA would not affect training; '
                    "use mlaan.ema='all' or fix the schedule")

    def format(self) -> str:
        """The plan as a table (one row per module)."""
        k = self.num_modules
        lines = [f'local plan: K={k} modules, stem={self.stem!r}, '
                 + ', '.join(f'{a}={b}' for a, b in self.settings.items()),
                 '| module | boundary | head | kind | method | weight | loss weights | trains '
                 '| PFF | leap copies | EMA |',
                 '|---|---|---|---|---|---:|---|---|---|---|---|']
        for m in range(k):
            name = self.boundaries[m] if m < k - 1 else '(last: task head)'
            heads = self.at(m)
            if not heads:
                lines.append(f'| m{m + 1} | {name} | - | | | | | | | | |')
            for h in heads:
                trains = f'm{h.reach + 1}' if h.reach == h.module else \
                    f'm{h.reach + 1}..m{h.module + 1}'
                pff = f'{h.pff} n={h.patches}' if h.pff else '-'
                lines.append(
                    f'| m{m + 1} | {name} | local.{h.key} | {h.kind} | '
                    f'{_method_str(h.method)} | {h.weight:g} | {_fmt_weights(h.loss_weights)}'
                    + (f' (r={h.r:.3g})' if h.r is not None else '')
                    + f' | {trains} | {pff} | '
                    f'{", ".join(p.split("backbone.")[-1] for p in h.leap) or "-"} | '
                    f'{"r=" + format(h.momentum, "g") if h.ema else "-"}'
                    f'{", SGD-trained" if h.leap and h.ema_branch == "trained" else ""} |')
        below = (f'task loss weight 1 at m{k}, {self.task_weight_below:g} on '
                 f'm{self.task_reach + 1}..m{k - 1}' if self.task_weight_below > 0
                 and self.task_reach < k - 1 else f'task loss weight 1 at m{k} only')
        lines.append(below)
        totals = self.module_weights()
        lines.append('total loss weight per module: '
                     + ' '.join(f'm{m + 1}={t:.4g}' for m, t in enumerate(totals)))
        if any(n > 1 for n in self.passes):
            lines.append("forward passes of each module's blocks in the authors' loop (its BN "
                         "updates; bn_updates='per-path' reproduces them): "
                         + ' '.join(f'm{m + 1}={n}x' for m, n in enumerate(self.passes)))
        return '\n'.join(lines)


def _fmt_weights(w: Dict[str, float]) -> str:
    return '{' + ', '.join(f'{k}: {v:.4g}' for k, v in w.items()) + '}'


def _method_str(cfg: dict) -> str:
    cfg = dict(cfg)
    name = cfg.pop('type', '?')
    cls = cfg.get('classifier')
    psi = ''
    if isinstance(cls, dict):
        psi = cls.get('arch', cls.get('type', ''))
    return name + (f'({psi})' if psi else '')


def build_plan(boundaries: Sequence[str], cfg: Union[LocalConfig, Mapping],
               leaps: Optional[Sequence[Sequence[str]]] = None,
               stem_block: Optional[str] = None) -> LocalPlan:
    """The plan of a split.

    Args:
        boundaries: the K-1 boundary paths (the first may be the stem).
        cfg: ``optim_wrapper.local``, checked by the schema (a dict is
            parsed by ``LocalConfig.parse``: its defaults and errors are the
            only ones). Read here: ``method`` (schedules through the method's
            ``loss_weights(r)``), ``hilo``, ``pff``, ``mlaan``, ``stem`` and
            ``schedule`` (see the module docstring); the split (``num_modules``,
            ``boundaries``, ``split``) is the caller's.
        leaps: for each boundary, the later blocks MLAAN copies in front of
            its head (``leap.leap_blocks``; ``plan_for`` resolves them).
        stem_block: the backbone's stem, as its block list marks it
            (``BlockList.stem``; ``plan_for`` reads it): a first boundary
            there is the stem's module.

    Checks made here need the boundaries: the cascade window against K, a
    merged stem needing a module after it, the stage of ``schedule='stage'``.
    """
    cfg = LocalConfig.parse(cfg)
    boundaries = tuple(boundaries)
    k_modules = len(boundaries) + 1
    n_local = k_modules - 1
    cfg.check_window(k_modules)
    hilo, pff, mlaan, schedule = cfg.hilo, cfg.pff, cfg.mlaan, cfg.schedule
    has_stem = bool(boundaries) and stem_block is not None and boundaries[0] == stem_block
    # without a stem boundary the stem already belongs to module 0
    merged = cfg.stem == 'merged' and has_stem
    if merged and n_local < 2:
        raise LocalConfigError("local.stem='merged' needs a local module after the stem")

    def seg(j: int) -> int:  # segment index of module j (j >= 1 when merged)
        return j - 1 if merged else j

    def module_of(s: int) -> int:  # first module of segment s (the stem for s = 0)
        return 0 if (merged and s <= 0) else max(s + int(merged), 0)

    n_segments = k_modules - int(merged)  # the authors' local_module_num (ML)

    def ratio(j: int) -> float:
        if schedule == 'index':
            return seg(j) / (k_modules - 2) if k_modules > 2 else 0.
        found = _STAGE.search(boundaries[j])
        if found is None:
            raise LocalConfigError(
                f"local.schedule='stage' takes r from the backbone stage of each module's "
                f'last block (a path ending in layer<N>.<block>); {boundaries[j]!r} has '
                "none: use schedule='index', or stem='merged' so no head reads the stem")
        r = int(found.group(1)) / (n_segments - 2) if n_segments > 2 else 0.
        if r > 1:
            raise LocalConfigError(
                f"local.schedule='stage' puts {boundaries[j]} at r = {found.group(1)}/"
                f'{n_segments - 2} > 1, beyond the end of the schedule (negative weights): it '
                "is MLAAN's setting for one-block modules (ResNet-32 K=16, ResNet-110 K=55); "
                "use schedule='index' for this split")
        return r

    main_cfg = cfg.method
    main = build_method(main_cfg)
    window = hilo.cascade if hilo else 1
    w_ind = hilo.independent_weight if hilo else 1.
    w_cas = hilo.cascade_weight if hilo else 0.
    with_ind = hilo.independent if hilo else True
    first_ind = hilo.first_independent if hilo else True
    ind_cfg = hilo.independent_method if hilo and hilo.independent_method else main_cfg
    ind = build_method(ind_cfg) if ind_cfg is not main_cfg else main

    patches = pff.patches if pff else 1
    variant = pff.variant if patches > 1 else ''
    strategy = pff_strategy(variant)
    if mlaan and leaps is None:
        raise ValueError('an MLAAN plan needs the leap copies of each boundary (leaps=...)')
    leap_path = mlaan.path if mlaan else None
    momentum = mlaan.momentum if mlaan else 0.995
    ema_branch = mlaan.ema_branch if mlaan else 'frozen'

    def head(kind: HeadKind, j: int, meth, method: dict, weight: float,
             reach: int) -> HeadPlan:
        r = ratio(j) if meth.scheduled else 0.
        n = patches if kind in pff_kinds else 1
        if n > 1 and strategy.needs_decoder and not meth.has_decoder:
            n = 1  # these variants patch the reconstruction only
        leap = tuple(leaps[j]) if leap_path == kind and leaps and leaps[j] else ()
        key = f'm{j + 1}' if kind == 'independent' else f'm{j + 1}.cascade'
        return HeadPlan(key=key, module=j, kind=kind, method=dict(method), weight=weight,
                        reach=reach, loss_weights=meth.loss_weights(r), patches=n,
                        pff=variant if n > 1 else '', pff_mode=pff.mode if n > 1 else
                        'sequential', leap=leap, ema=False, momentum=momentum,
                        ema_branch=ema_branch, r=r if meth.scheduled else None)

    pff_kinds = pff.apply_to if pff else ()
    heads: List[HeadPlan] = []
    for j in range(n_local):
        if merged and j == 0:
            continue  # the stem is no segment: no head reads it
        s = seg(j)
        if not hilo:
            heads.append(head('independent', j, ind, ind_cfg, 1., module_of(s)))
            continue
        if with_ind and (first_ind or s >= window - 1):
            heads.append(head('independent', j, ind, ind_cfg, w_ind,
                              module_of(s) if s == 0 else j))
        if s >= window - 1:
            heads.append(head('cascade', j, main, main_cfg, w_cas, module_of(s - window + 1)))

    if mlaan:
        leap_idx = [i for i, h in enumerate(heads) if h.leap]
        if mlaan.ema == 'last':
            leap_idx = leap_idx[-1:]
        for i in leap_idx:
            heads[i] = replace(heads[i], ema=True)

    if hilo:
        last_seg = seg(k_modules - 1)
        task_reach = module_of(last_seg - window + 1) if window > 1 else k_modules - 1
        task_below = (w_cas if hilo.task_cascade_weight is None
                      else hilo.task_cascade_weight) if window > 1 else 0.
        if task_reach >= k_modules - 1:
            task_below = 0.
    else:
        task_reach, task_below = k_modules - 1, 0.

    # the authors' loops: the x path runs every segment (HPFF's ImageNet code,
    # independent=False, only E_0), each window (the task's too) re-runs its
    # segments on the y path, the stem runs once (y starts as its clone)
    windows = [(h.reach, h.module) for h in heads if h.kind == 'cascade']
    if window > 1:
        windows.append((task_reach, k_modules - 1))
    passes = []
    for j in range(k_modules):
        if merged and j == 0:
            passes.append(1)
            continue
        x_path = 1 if (with_ind or not hilo or seg(j) == 0) else 0
        passes.append(max(1, x_path + sum(lo <= j <= hi for lo, hi in windows)))
    settings = {'method': _method_str(main_cfg)}
    if hilo:
        settings['hilo'] = (f'k={window} w_ind={w_ind:g} w_cas={w_cas:g}'
                            + ('' if with_ind else ' no independent path')
                            + ('' if first_ind else ' independent from the first full window'))
    if patches > 1:
        settings['pff'] = f'{variant} n={patches}'
    if mlaan:
        settings['mlaan'] = (f'path={leap_path} ema={mlaan.ema} r={momentum:g} '
                             f'ema_branch={ema_branch}')
    if schedule != 'index':
        settings['schedule'] = schedule
    return LocalPlan(boundaries=boundaries, heads=tuple(heads), task_reach=task_reach,
                     task_weight_below=task_below, stem='merged' if merged else 'module',
                     settings=settings, passes=tuple(passes))


def build_head(hp: HeadPlan, feat: FeatureInfo, task: TaskInfo, model=None,
               leap_feat: Optional[FeatureInfo] = None):
    """The head of ``hp``: the method's head on ``feat`` (or, with leap
    copies, on ``leap_feat``, the last copied block's output) with the plan's
    loss weights and PFF variant; MLAAN wraps it with copies of the live
    blocks (``model`` gives them)."""
    from mmlocal.models.heads.leap_head import LeapAugmentedHead
    meth = build_method(hp.method)
    if hp.leap:
        if leap_feat is None or model is None:
            raise ValueError(f'head local.{hp.key} copies {list(hp.leap)}: '
                             'build_head needs the model and the leap feature')
        inner = meth.build_head(leap_feat, task, hp.loss_weights, pff=(hp.pff, hp.patches))
        return LeapAugmentedHead(blocks=[model.get_submodule(p) for p in hp.leap],
                                 sources=list(hp.leap), head=inner, momentum=hp.momentum,
                                 ema_trainable=hp.ema_branch == 'trained')
    return meth.build_head(feat, task, hp.loss_weights, pff=(hp.pff, hp.patches))


def plan_for(boundaries: Sequence[str], block_paths: Sequence[str], depth: Optional[int],
             cfg: Union[LocalConfig, Mapping]) -> LocalPlan:
    """``build_plan`` with MLAAN's leap copies (``mlaan.table``,
    ``leap.leap_blocks``) resolved from the backbone's block paths and
    depth, and the stem from the list's mark. No model forward; the plan the
    learner and the analysis build."""
    cfg = LocalConfig.parse(cfg)
    leaps = None
    if cfg.mlaan is not None:
        from .leap import leap_blocks
        leaps = leap_blocks(boundaries, block_paths, depth, cfg.mlaan.table)
    return build_plan(boundaries, cfg, leaps=leaps, stem_block=stem_of(block_paths))
