"""The local plan: which heads supervise which modules, with what weights.

Pure data, decided from the config and the split before any head exists, so
it can be printed, logged, checked (every module must be reached by a loss
of positive weight) and compared with the papers' tables.
"""
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Tuple

import torch.nn as nn

from mmlocal.models.heads.leap_head import LeapAugmentedHead
from mmlocal.structures import FeatureInfo, TaskInfo
from .config import LocalConfig, LocalConfigError
from .methods import build_method


@dataclass(frozen=True)
class HeadPlan:
    """One local head."""
    key: str  # 'm3' or 'm3.cascade' (1-based names); logs 'local.<key>.loss_x'
    module: int  # 0-based module j whose output the head reads
    kind: str  # 'independent' | 'cascade'
    method: dict  # the method config that builds it
    weight: float  # HiLo weight of its loss (1.0 without HiLo)
    reach: int  # first module its gradient reaches: it trains modules reach..module
    loss_weights: Dict[str, float]  # the method's weights at this module
    patches: int = 1  # PFF n (1 = off)
    leap: Tuple[str, ...] = ()  # MLAAN: later blocks copied in front of the head
    ema: bool = False  # its EMA copy follows the live block each iteration


@dataclass(frozen=True)
class LocalPlan:
    """All local heads of a split, and how far the task loss reaches."""
    boundaries: Tuple[str, ...]
    heads: Tuple[HeadPlan, ...]
    task_reach: int  # first module the task loss reaches
    task_weight_below: float  # weight of the task gradient below the last module
    momentum: float = 0.995  # MLAAN EMA keep fraction

    @property
    def num_modules(self) -> int:
        return len(self.boundaries) + 1

    def reach_back(self) -> int:
        """How many earlier modules a loss can reach: the graphs kept alive."""
        last = self.num_modules - 1
        spans = [h.module - h.reach for h in self.heads] + [last - self.task_reach]
        return max(spans + [0])

    def heads_of(self, j: int) -> List[HeadPlan]:
        return [h for h in self.heads if h.module == j]

    def check_supervised(self) -> None:
        """Every local module must be trained by some loss of positive weight."""
        last = self.num_modules - 1
        for m in range(last):
            total = sum(h.weight * sum(max(v, 0.) for v in h.loss_weights.values())
                        for h in self.heads if h.reach <= m <= h.module)
            if m >= self.task_reach:
                total += self.task_weight_below
            if total <= 0:
                reaching = [h.key for h in self.heads if h.reach <= m <= h.module]
                why = (f'its heads {reaching} have zero weight' if reaching
                       else 'no head reaches it')
                raise LocalConfigError(
                    f'local module m{m + 1} (ending at {self.boundaries[m]}) would never learn: '
                    f'{why}. Check the method\'s loss weights at this module (e.g. an InfoPro '
                    'schedule that ends at (0, 0)), hilo.independent / first_independent and '
                    'the cascade window')

    def format(self) -> str:
        """A table: module, boundary, heads with weights and reach, EMA."""
        lines = [f'local plan: K={self.num_modules}, task loss reaches m{self.task_reach + 1}..'
                 f'm{self.num_modules} (weight below the last: {self.task_weight_below:g})',
                 f'{"module":<7} {"boundary":<28} {"head":<14} {"kind":<11} {"weight":>7} '
                 f'{"reaches":<10} {"loss weights":<26} {"pff":>3}  leap / ema']
        for j, b in enumerate(self.boundaries):
            heads = self.heads_of(j) or [None]
            for h in heads:
                if h is None:
                    lines.append(f'm{j + 1:<6} {b:<28} (none)')
                    continue
                lw = ', '.join(f'{k}={v:.4g}' for k, v in h.loss_weights.items())
                leap = ' '.join(p.split('.', 1)[-1] for p in h.leap)
                ema = (' ema' if h.ema else ' frozen-copy') if h.leap else ''
                lines.append(f'm{j + 1:<6} {b:<28} {h.key:<14} {h.kind:<11} {h.weight:>7.4g} '
                             f'm{h.reach + 1}..m{h.module + 1:<5} {lw:<26} {h.patches:>3}  '
                             f'{leap}{ema}')
        return '\n'.join(lines)


def _loss_weights(method: dict, j: int, n_local: int) -> Dict[str, float]:
    meth = build_method(method)
    return meth.loss_weights(j, n_local)


def build_plan(cfg: LocalConfig, boundaries: Sequence[str],
               leaps: Optional[Sequence[Sequence[str]]] = None) -> LocalPlan:
    """The heads of every module for ``cfg`` and the resolved split.

    ``leaps``: MLAAN's copied blocks per module (from ``leap.py``)."""
    k = len(boundaries) + 1
    n_local = k - 1
    hilo, pff, mlaan = cfg.hilo, cfg.pff, cfg.mlaan
    window = hilo.cascade if hilo else 1
    w_ind = hilo.independent_weight if hilo else 1.
    w_cas = hilo.cascade_weight if hilo else 0.
    ind_method = (hilo.independent_method if hilo and hilo.independent_method else cfg.method)
    apply_to = pff.apply_to if pff else ()
    heads = []
    for j in range(n_local):
        leap = tuple(leaps[j]) if leaps else ()
        for kind in ('independent', 'cascade'):
            if kind == 'independent':
                if hilo and not (hilo.independent and (hilo.first_independent or j > 0)):
                    continue
                method, weight, reach, key = ind_method, w_ind, j, f'm{j + 1}'
            else:
                if not hilo or j < window - 1:
                    continue
                method, weight, reach, key = cfg.method, w_cas, j - window + 1, f'm{j + 1}.cascade'
            with_leap = bool(mlaan) and mlaan.path == kind and bool(leap)
            heads.append(HeadPlan(
                key=key, module=j, kind=kind, method=dict(method), weight=weight, reach=reach,
                loss_weights=_loss_weights(method, j, n_local),
                patches=pff.patches if pff and kind in apply_to else 1,
                leap=leap if with_leap else (),
                ema=with_leap and False))
    if mlaan:
        leap_heads = [i for i, h in enumerate(heads) if h.leap]
        chosen = leap_heads[-1:] if mlaan.ema == 'last' else leap_heads
        for i in chosen:
            h = heads[i]
            heads[i] = HeadPlan(**{**h.__dict__, 'ema': True})
    last = k - 1
    task_reach = max(last - window + 1, 0) if hilo else last
    return LocalPlan(tuple(boundaries), tuple(heads), task_reach,
                     w_cas if hilo and task_reach < last else 0.,
                     mlaan.momentum if mlaan else 0.995)


def build_head(hp: HeadPlan, n_local: int, feat: FeatureInfo, leap_feat: Optional[FeatureInfo],
               task: TaskInfo, model: nn.Module, momentum: float = 0.995) -> nn.Module:
    """The head module of ``hp`` (wrapped with MLAAN's copies when it leaps)."""
    meth = build_method(hp.method)
    if not hp.leap:
        return meth.build_head(hp.module, n_local, feat, task)
    head = meth.build_head(hp.module, n_local, leap_feat, task)
    return LeapAugmentedHead(blocks=[model.get_submodule(p) for p in hp.leap],
                             sources=list(hp.leap), head=head, momentum=momentum)
