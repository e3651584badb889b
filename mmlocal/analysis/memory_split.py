"""``split='memory'`` and ``local.memory_budget`` at build time.

The optim wrapper constructor calls :func:`resolve_measured_split` before it
builds the learner: one training step is measured at ``local.memory_batch``
on the model's device (``peaks.py``), a split is chosen
(``split_search.py``), and the learner gets explicit boundaries.
"""
import dataclasses
from typing import Optional

import torch.nn as nn
from mmengine.dist import broadcast_object_list, get_world_size, is_distributed
from mmengine.logging import print_log

from mmlocal.local.config import LocalConfig, LocalConfigError
from mmlocal.local.split import resolve_boundaries
from mmlocal.local.targets import build_target_adapter
from mmlocal.utils.memory import MB
from .batch import synthetic_training_batch, training_input_size
from .peaks import measure_peak_costs, module_peaks, optimizer_state_ratio, predicted_peak
from .split_search import fewest_modules_within


def _mb(value: float) -> str:
    return f'{value / MB:.1f} MB'


def resolve_measured_split(model: nn.Module, cfg, optimizer: Optional[dict] = None
                           ) -> LocalConfig:
    """``split='memory'`` and ``memory_budget`` at build time: measure one
    training step at ``local.memory_batch`` on the model's device and return
    the config with the chosen explicit boundaries (other configs unchanged).
    ``optimizer``: the optimizer config, whose state counts in the budget.

    In a distributed run every rank measures (SyncBN needs them all) and
    rank 0's choice is taken by all.
    """
    cfg = LocalConfig.parse(cfg)
    if not cfg.measures_peaks or cfg.boundaries is not None:
        return cfg
    if cfg.memory_batch is None:
        what = 'memory_budget' if cfg.memory_budget is not None else "split='memory'"
        raise LocalConfigError(
            f'local.{what} measures a training step: give its batch, '
            'local.memory_batch=dict(batch_size=<train_dataloader.batch_size>, '
            "input_size=(H, W) of the training crop); or use split='activations' (the "
            "probe's activation memory), 'blocks', or explicit boundaries")
    if cfg.memory_budget is None and cfg.num_modules is None:
        raise LocalConfigError("local.split='memory' needs num_modules (K) or a memory_budget")
    backbone = model.get_submodule(cfg.backbone)
    adapter = build_target_adapter(model, cfg.task)
    hw = training_input_size(model, backbone, cfg.memory_batch.input_size)
    data = synthetic_training_batch(model, adapter.task,
                                    cfg.num_classes or adapter.num_classes(model),
                                    cfg.memory_batch.batch_size, hw)
    state = optimizer_state_ratio(optimizer) if optimizer is not None else 0.
    costs = measure_peak_costs(model, data['inputs'], data['data_samples'], cfg, state)
    n = len(costs.paths)
    where = f'batch {cfg.memory_batch.batch_size} x {hw[0]}x{hw[1]} on {data["inputs"].device}'
    refusal = None
    if cfg.memory_budget is None:
        boundaries = resolve_boundaries(model, cfg.num_modules, split='memory',
                                        backbone_path=cfg.backbone,
                                        peak_costs=lambda paths: costs)
        why = "split='memory'"
    else:
        fit = fewest_modules_within(costs, cfg.memory_budget)
        boundaries = [costs.paths[e] for e in fit.ends[:-1]] if fit.ends is not None else None
        why = f'memory_budget={_mb(cfg.memory_budget)}: the smallest K that fits'
        if fit.ends is None:
            refusal = (f'local.memory_budget={_mb(cfg.memory_budget)} cannot be met: the lowest '
                       f'predicted peak of any split is {_mb(fit.lowest)} '
                       f'(K={len(fit.lowest_ends)}, {where}; parameters, buffers and optimizer '
                       f'state {_mb(costs.static)}). Raise the budget to at least that, or lower '
                       'train_dataloader.batch_size and memory_batch.batch_size with it')
    if is_distributed() and get_world_size() > 1:  # rank 0's decision, refusal included
        box = [(boundaries, refusal)]
        broadcast_object_list(box, src=0)
        boundaries, refusal = box[0]
    if refusal is not None:
        raise LocalConfigError(refusal)
    ends = [costs.paths.index(b) for b in boundaries] + [n - 1]
    peaks = module_peaks(costs, ends)
    print_log(f'local split measured at {where} ({why}, K={len(ends)}): predicted step peak '
              f'{_mb(predicted_peak(costs, ends))}, module peaks '
              f"{' / '.join(f'{p / MB:.0f}' for p in peaks)} MB; boundaries {boundaries}",
              logger='current')
    return dataclasses.replace(cfg, num_modules=None, boundaries=tuple(boundaries))
