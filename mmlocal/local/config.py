"""The ``optim_wrapper.local`` schema: typed, checked, refused when wrong.

A typo in a config dict must not train silently for days: every key of
``local`` and of its sub-dicts is known or refused (with the closest valid
key suggested), and every value is checked here, at build time, with a
message that names the fix. Checks that need the model (K against the
number of blocks, the cascade window against K, PFF patches against the
feature map) are made where the model is known, with the same style.
"""
import dataclasses
import difflib
import inspect
import numbers
from dataclasses import dataclass, field
from typing import Any, Dict, Literal, Mapping, Optional, Tuple, get_args

from mmlocal.registry import LOCAL_METHODS, MODELS, PFF_VARIANTS

#: the closed sets of the schema's string values (one owner: checked here,
#: the plan and the runtime read them typed)
HeadKind = Literal['independent', 'cascade']  # a module's own head, or its HiLo window's
PFFMode = Literal['sequential', 'batched']
Stem = Literal['module', 'merged']
Schedule = Literal['index', 'stage']
BNUpdates = Literal['once', 'per-path']
EMABranch = Literal['frozen', 'trained']
EMAMode = Literal['all', 'last']
LeapTable = Literal['auto', 'mlaan', 'rule']
HEAD_KINDS: Tuple[str, ...] = get_args(HeadKind)


class LocalConfigError(ValueError):
    """A wrong ``optim_wrapper.local`` setting (the message names the fix)."""


def _suggest(key: str, valid) -> str:
    close = difflib.get_close_matches(key, list(valid), n=1, cutoff=0.5)
    return f' Did you mean {close[0]!r}?' if close else ''


def check_keys(given: Mapping, valid, where: str) -> None:
    """Refuse keys of ``given`` that are not in ``valid``."""
    for key in given:
        if key not in valid:
            raise LocalConfigError(
                f'{where} has no key {key!r}.{_suggest(str(key), valid)} '
                f'Valid keys: {", ".join(sorted(valid))}.')


def _number(value, where: str, low: Optional[float] = None, high: Optional[float] = None,
            high_open: bool = False, integer: bool = False) -> Any:
    kind = numbers.Integral if integer else numbers.Real
    if isinstance(value, bool) or not isinstance(value, kind):
        raise LocalConfigError(f'{where} must be {"an integer" if integer else "a number"}, '
                               f'got {value!r}')
    if low is not None and value < low:
        raise LocalConfigError(f'{where} must be >= {low}, got {value!r}')
    if high is not None and (value >= high if high_open else value > high):
        raise LocalConfigError(f'{where} must be {"<" if high_open else "<="} {high}, '
                               f'got {value!r}')
    return int(value) if integer else float(value)


def _choice(value, choices, where: str) -> str:
    choices = get_args(choices) or tuple(choices)
    if value not in choices:
        raise LocalConfigError(f'{where} must be one of {sorted(choices)}, got {value!r}.'
                               f'{_suggest(str(value), choices)}')
    return value


def _bool(value, where: str) -> bool:
    if not isinstance(value, bool):
        raise LocalConfigError(f'{where} must be True or False, got {value!r}')
    return value


def _pair(value, where: str, low: Optional[float] = None) -> Tuple[float, float]:
    if not isinstance(value, (tuple, list)) or len(value) != 2:
        raise LocalConfigError(f'{where} must be a pair (start, end), e.g. (5.0, 0.5); '
                               f'got {value!r}')
    return tuple(_number(v, f'{where}[{i}]', low=low) for i, v in enumerate(value))


def _module_cfg(value, where: str) -> dict:
    if not isinstance(value, Mapping) or 'type' not in value:
        raise LocalConfigError(f"{where} must be a dict with a 'type', got {value!r}")
    if MODELS.get(value['type']) is None:
        raise LocalConfigError(f'{where}: unknown model type {value["type"]!r}')
    return dict(value)


#: Value checks of method arguments, by argument name (shared by all methods).
_METHOD_ARGS = {
    'recon_weights': lambda v, w: _pair(v, w, low=0),
    'task_weights': lambda v, w: _pair(v, w, low=0),
    'task_loss': lambda v, w: _choice(v, ('softmax', 'contrast'), w),
    'loss_weight': lambda v, w: _number(v, w, low=0),
    'beta': lambda v, w: _number(v, w, low=0, high=1),
    'feature_dim': lambda v, w: _number(v, w, low=1, integer=True),
    'dim_in_decoder': lambda v, w: _number(v, w, low=1, integer=True),
    'classifier': lambda v, w: None if v is None else _module_cfg(v, w),
    'decoder': lambda v, w: None if v is None else _module_cfg(v, w),
}


def parse_method(cfg, where: str = 'local.method') -> dict:
    """Check a method config against its class: known type, known arguments
    (from the constructor's signature), checked values."""
    if not isinstance(cfg, Mapping) or 'type' not in cfg:
        raise LocalConfigError(f"{where} must be a dict with a 'type', e.g. dict(type='DGL'); "
                               f'got {cfg!r}')
    cfg = dict(cfg)
    cls = LOCAL_METHODS.get(cfg['type'])
    if cls is None:
        names = sorted(LOCAL_METHODS.module_dict)
        raise LocalConfigError(f'{where}.type {cfg["type"]!r} is not a local method.'
                               f'{_suggest(str(cfg["type"]), names)} Choose one of {names}.')
    params = inspect.signature(cls.__init__).parameters
    valid = [n for n, p in params.items()
             if n != 'self' and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]
    check_keys({k: v for k, v in cfg.items() if k != 'type'}, valid, f'{where} ({cfg["type"]})')
    for key, value in cfg.items():
        if key in _METHOD_ARGS:
            cfg[key] = _METHOD_ARGS[key](value, f'{where}.{key}')
    return cfg


class _Section:
    """A sub-dict of ``local``: built from a dict with every key checked."""

    @classmethod
    def parse(cls, cfg, where: str):
        if cfg is None or cfg is False:
            return None
        if isinstance(cfg, cls):
            return cfg
        if not isinstance(cfg, Mapping):
            raise LocalConfigError(f'{where} must be a dict, got {cfg!r}')
        check_keys(cfg, [f.name for f in dataclasses.fields(cls)], where)
        return cls(**cfg)._checked(where)

    def _checked(self, where: str):
        return self

    def to_dict(self) -> Dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class HiLoConfig(_Section):
    """HPFF hierarchical supervision (``local.hilo``)."""
    cascade: int = 2  # window k: a cascade loss trains k modules
    independent_weight: float = 0.001
    cascade_weight: float = 0.999
    independent: bool = True  # False: the authors' ImageNet code (cascade heads only)
    first_independent: bool = True  # False: their CIFAR code (module 1 learns from the cascade)
    independent_method: Optional[dict] = None  # another method for the independent heads
    task_cascade_weight: Optional[float] = None  # task gradient below the last module (cascade_weight)

    def _checked(self, where):
        w_ind = _number(self.independent_weight, f'{where}.independent_weight', low=0)
        w_cas = _number(self.cascade_weight, f'{where}.cascade_weight', low=0)
        if w_ind == 0 and w_cas == 0:
            raise LocalConfigError(f'{where}: independent_weight and cascade_weight are both 0, '
                                   'no module would learn; the HPFF values are 0.001 and 0.999')
        task_w = self.task_cascade_weight
        if task_w is not None:
            task_w = _number(task_w, f'{where}.task_cascade_weight', low=0)
        method = self.independent_method
        if method is not None:
            method = parse_method(method, f'{where}.independent_method')
        return dataclasses.replace(
            self, cascade=_number(self.cascade, f'{where}.cascade', low=1, integer=True),
            independent_weight=w_ind, cascade_weight=w_cas,
            independent=_bool(self.independent, f'{where}.independent'),
            first_independent=_bool(self.first_independent, f'{where}.first_independent'),
            independent_method=method, task_cascade_weight=task_w)


@dataclass(frozen=True)
class PFFConfig(_Section):
    """HPFF patch feature fusion (``local.pff``)."""
    patches: int = 2  # n: heads run on n x n patches
    # a strategy of ``PFF_VARIANTS`` (``head_runner.py``): 'paper' | 'quadrant'
    # (HPFF CIFAR code) | 'output' (ImageNet code)
    variant: str = 'paper'
    apply_to: Tuple[HeadKind, ...] = HEAD_KINDS
    # 'paper' variant: patches one at a time (memory) or all in one batched call (launches)
    mode: PFFMode = 'sequential'

    def _checked(self, where):
        apply_to = self.apply_to
        if isinstance(apply_to, str) or not isinstance(apply_to, (tuple, list)) or not apply_to:
            raise LocalConfigError(f"{where}.apply_to must be a non-empty tuple of 'independent' "
                                   f"and/or 'cascade', got {apply_to!r}")
        for item in apply_to:
            _choice(item, HeadKind, f'{where}.apply_to')
        PFF_VARIANTS.import_from_location()
        return dataclasses.replace(
            self, patches=_number(self.patches, f'{where}.patches', low=1, integer=True),
            variant=_choice(self.variant, tuple(PFF_VARIANTS.module_dict), f'{where}.variant'),
            apply_to=tuple(apply_to), mode=_choice(self.mode, PFFMode, f'{where}.mode'))

    @property
    def strategy(self):
        """The variant's strategy (``PFF_VARIANTS``), with n and the mode."""
        return PFF_VARIANTS.get(self.variant)


@dataclass(frozen=True)
class MLAANConfig(_Section):
    """MLAAN leap-augmented modules (``local.mlaan``)."""
    momentum: float = 0.995  # EMA keep fraction r
    ema: EMAMode = 'all'  # 'all' modules, or the 'last' only (the authors' CIFAR code)
    path: HeadKind = 'cascade'  # heads that get the copies: 'cascade' (code) or 'independent'
    table: LeapTable = 'auto'  # 'auto' | 'mlaan' (the authors' tables, required) | 'rule'
    # 'frozen' EMA branches (the paper, resnetDGLbin.py) or 'trained' by the
    # optimizer too (resnetInfoProbin.py never freezes them)
    ema_branch: EMABranch = 'frozen'

    def _checked(self, where):
        return dataclasses.replace(
            self,
            momentum=_number(self.momentum, f'{where}.momentum', low=0, high=1, high_open=True),
            ema=_choice(self.ema, EMAMode, f'{where}.ema'),
            ema_branch=_choice(self.ema_branch, EMABranch, f'{where}.ema_branch'),
            path=_choice(self.path, HeadKind, f'{where}.path'),
            table=_choice(self.table, LeapTable, f'{where}.table'))


@dataclass(frozen=True)
class PipelineConfig(_Section):
    """Pipelined local learning (``local.pipeline``): the local modules are
    cut into ``stages`` runs of consecutive modules, one per group of
    processes, which work at the same time on successive batches."""
    stages: int = 2  # S; must divide the world size (W/S data-parallel replicas per stage)
    balance: str = 'blocks'  # 'blocks' (equal block counts) | 'modules' (equal module counts)
    modules_per_stage: Optional[Tuple[int, ...]] = None  # explicit, e.g. (30, 25); sums to K
    release_params: bool = True  # free other stages' parameters between validations

    def _checked(self, where):
        stages = _number(self.stages, f'{where}.stages', low=1, integer=True)
        per = self.modules_per_stage
        if per is not None:
            if isinstance(per, str) or not isinstance(per, (tuple, list)) or len(per) != stages:
                raise LocalConfigError(f'{where}.modules_per_stage must list {stages} module '
                                       f'counts (one per stage), e.g. (3, 2); got {per!r}')
            per = tuple(_number(n, f'{where}.modules_per_stage[{i}]', low=1, integer=True)
                        for i, n in enumerate(per))
        return dataclasses.replace(
            self, stages=stages, modules_per_stage=per,
            release_params=_bool(self.release_params, f'{where}.release_params'),
            balance=_choice(self.balance, ('blocks', 'modules'), f'{where}.balance'))


@dataclass(frozen=True)
class MemoryBatchConfig(_Section):
    """The training batch at which ``split='memory'`` and ``memory_budget``
    measure a step's peak (``local.memory_batch``): the batch of one process
    (``train_dataloader.batch_size``) and the crop it trains on."""
    batch_size: Optional[int] = None
    input_size: Optional[Tuple[int, int]] = None  # (H, W); default: the preprocessor's crop

    def _checked(self, where):
        if self.batch_size is None:
            raise LocalConfigError(f'{where}.batch_size is required: the batch of one process '
                                   '(train_dataloader.batch_size)')
        size = self.input_size
        if size is not None:
            if isinstance(size, str) or not isinstance(size, (tuple, list)) or len(size) != 2:
                raise LocalConfigError(f'{where}.input_size must be (H, W), got {size!r}')
            size = tuple(_number(v, f'{where}.input_size', low=1, integer=True) for v in size)
        return dataclasses.replace(
            self, batch_size=_number(self.batch_size, f'{where}.batch_size', low=1, integer=True),
            input_size=size)


_UNITS = {'': 1, 'B': 1, 'K': 2**10, 'M': 2**20, 'G': 2**30, 'T': 2**40}


def parse_bytes(value, where: str) -> int:
    """Bytes from an int or a string like '20GB', '512 MiB', '1.5G' (binary
    units: 1 GB = 2**30 bytes, as torch.cuda and nvidia-smi count)."""
    if isinstance(value, str):
        text = value.strip().upper().replace('IB', '').replace('B', '') or '?'
        unit = text[-1] if text[-1] in _UNITS else ''
        try:
            number = float(text[:-1] if unit else text)
        except ValueError:
            raise LocalConfigError(f"{where} must be a number of bytes or a size like '20GB', "
                                   f'got {value!r}') from None
        value = number * _UNITS[unit]
    value = _number(value, where, low=1)
    return int(value)




@dataclass(frozen=True)
class LocalConfig:
    """``optim_wrapper.local``: how the model is cut and supervised."""
    num_modules: Optional[int] = None
    boundaries: Optional[Tuple[str, ...]] = None
    split: str = 'auto'
    method: dict = field(default_factory=lambda: dict(type='DGL'))
    hilo: Optional[HiLoConfig] = None
    pff: Optional[PFFConfig] = None
    mlaan: Optional[MLAANConfig] = None
    pipeline: Optional[PipelineConfig] = None
    task: Optional[str] = None
    backbone: str = 'backbone'
    stem: Stem = 'module'  # 'module' (InfoPro: the stem is a module) | 'merged' (HPFF/MLAAN)
    # schedule position r of each module: 'index' (module or segment index / (K-2)) |
    # 'stage' (backbone stage / (S-2): MLAAN's resnetInfoProbin.py); see plan.py
    schedule: Schedule = 'index'
    # BN running statistics per step: 'once' | 'per-path' (as often as the authors'
    # HiLo/MLAAN loops run each block: momentum 1-(1-m)^n, n from the plan)
    bn_updates: BNUpdates = 'once'
    probe_size: Optional[Tuple[int, int]] = None
    num_classes: Optional[int] = None
    check_finite: bool = True
    # HiLo/MLAAN windows keep only each module's input and recompute its forward
    # for the VJPs (True: refuse a module that cannot be re-run; 'auto': it keeps its graph)
    recompute: Any = 'auto'
    # the smallest K (and its split='memory' split) whose measured step peak fits (bytes or '20GB')
    memory_budget: Optional[int] = None
    memory_batch: Optional[MemoryBatchConfig] = None  # where split='memory' measures

    @classmethod
    def parse(cls, cfg, where: str = 'optim_wrapper.local') -> 'LocalConfig':
        if isinstance(cfg, cls):
            return cfg
        if not isinstance(cfg, Mapping):
            raise LocalConfigError(f'{where} must be a dict, got {type(cfg).__name__}')
        cfg = dict(cfg)
        check_keys(cfg, [f.name for f in dataclasses.fields(cls)], where)
        if cfg.get('num_modules') is not None and cfg.get('boundaries') is not None:
            raise LocalConfigError(f'{where}: give num_modules or boundaries, not both')
        if cfg.get('num_modules') is not None:
            cfg['num_modules'] = _number(cfg['num_modules'], f'{where}.num_modules', low=1,
                                         integer=True)
        if cfg.get('boundaries') is not None:
            b = cfg['boundaries']
            if isinstance(b, str) or not isinstance(b, (tuple, list)) or \
                    not all(isinstance(p, str) for p in b):
                raise LocalConfigError(f"{where}.boundaries must be a list of block paths, e.g. "
                                       f"['backbone.layer2.0'], got {b!r}")
            cfg['boundaries'] = tuple(b)
        if 'split' in cfg and not isinstance(cfg['split'], str):
            raise LocalConfigError(f'{where}.split must be a string, got {cfg["split"]!r}')
        cfg['method'] = parse_method(cfg.get('method', dict(type='DGL')), f'{where}.method')
        cfg['hilo'] = HiLoConfig.parse(cfg.get('hilo'), f'{where}.hilo')
        cfg['pff'] = PFFConfig.parse(cfg.get('pff'), f'{where}.pff')
        cfg['mlaan'] = MLAANConfig.parse(cfg.get('mlaan'), f'{where}.mlaan')
        cfg['pipeline'] = PipelineConfig.parse(cfg.get('pipeline'), f'{where}.pipeline')
        if cfg['mlaan'] is not None and cfg['mlaan'].path == 'cascade' and cfg['hilo'] is None:
            raise LocalConfigError(f"{where}.mlaan.path='cascade' needs cascade windows: add "
                                   'hilo=dict(cascade=3) (MLAAN multilaminar modules) or set '
                                   "mlaan.path='independent'")
        cls._check_pff_heads(cfg, where)
        if cfg.get('probe_size') is not None:
            size = cfg['probe_size']
            if not isinstance(size, (tuple, list)) or len(size) != 2:
                raise LocalConfigError(f'{where}.probe_size must be (H, W), got {size!r}')
            cfg['probe_size'] = tuple(_number(v, f'{where}.probe_size', low=1, integer=True)
                                      for v in size)
        if cfg.get('num_classes') is not None:
            cfg['num_classes'] = _number(cfg['num_classes'], f'{where}.num_classes', low=1,
                                         integer=True)
        if 'recompute' in cfg and not (isinstance(cfg['recompute'], bool)
                                       or cfg['recompute'] == 'auto'):
            raise LocalConfigError(f"{where}.recompute must be True, False or 'auto', "
                                   f'got {cfg["recompute"]!r}')
        cls._parse_memory(cfg, where)
        if 'check_finite' in cfg:
            _bool(cfg['check_finite'], f'{where}.check_finite')
        if 'stem' in cfg:
            _choice(cfg['stem'], Stem, f'{where}.stem')
        if 'schedule' in cfg:
            _choice(cfg['schedule'], Schedule, f'{where}.schedule')
        if 'bn_updates' in cfg:
            _choice(cfg['bn_updates'], BNUpdates, f'{where}.bn_updates')
        if 'backbone' in cfg and not isinstance(cfg['backbone'], str):
            raise LocalConfigError(f'{where}.backbone must be a module path string')
        return cls(**cfg)

    @staticmethod
    def _check_pff_heads(cfg: dict, where: str) -> None:
        """A variant that patches the reconstruction decoder needs a patched
        head that has one (the plan would silently patch nothing)."""
        pff, hilo = cfg['pff'], cfg['hilo']
        if pff is None or pff.patches <= 1 or not pff.strategy.needs_decoder:
            return
        methods = []
        if 'independent' in pff.apply_to and (hilo is None or hilo.independent):
            methods.append((hilo.independent_method if hilo is not None else None)
                           or cfg['method'])
        if 'cascade' in pff.apply_to and hilo is not None:
            methods.append(cfg['method'])
        if not any(LOCAL_METHODS.get(m['type']).has_decoder for m in methods):
            raise LocalConfigError(
                f'{where}.pff.variant={pff.variant!r} patches the reconstruction decoder, but '
                f"no head of pff.apply_to={pff.apply_to} has one: use an InfoPro method or "
                "variant='paper'")

    @staticmethod
    def _parse_memory(cfg: dict, where: str) -> None:
        cfg['memory_batch'] = MemoryBatchConfig.parse(cfg.get('memory_batch'),
                                                      f'{where}.memory_batch')
        if cfg.get('memory_budget') is None:
            return
        cfg['memory_budget'] = parse_bytes(cfg['memory_budget'], f'{where}.memory_budget')
        given = [k for k in ('num_modules', 'boundaries') if cfg.get(k) is not None]
        if given:
            raise LocalConfigError(f'{where}.memory_budget chooses the number of modules itself: '
                                   f'drop {given[0]}, or drop memory_budget')
        if cfg.get('split', 'memory') not in ('memory', 'auto'):
            raise LocalConfigError(f"{where}.memory_budget takes split='memory' (the peak-"
                                   f"balanced split of each K), got split={cfg['split']!r}")
        cfg['split'] = 'memory'

    @property
    def measures_peaks(self) -> bool:
        """Whether the split needs a measured training step (``mmlocal.analysis``)."""
        return self.split == 'memory' or self.memory_budget is not None

    def check_window(self, num_modules: int) -> None:
        """The cascade window cannot span more modules than there are."""
        if self.hilo is not None and self.hilo.cascade > num_modules:
            raise LocalConfigError(
                f'local.hilo.cascade={self.hilo.cascade} spans more modules than the '
                f'{num_modules} local modules of this split: use a cascade window between 1 and '
                f'{num_modules}, or more modules')
