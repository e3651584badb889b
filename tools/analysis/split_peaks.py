"""Measure what each local module of a config holds at its peak, and the split
that balances it (``split='memory'``'s measurement, ``mmlocal.local.split``).

Builds the config's model, preprocesses one synthetic batch at the training
size, measures :class:`~mmlocal.local.split.PeakCosts` (per block: saved
graph bytes, parameter bytes; heads' and tail's allocator peaks) with the
config's local method, HiLo window and PFF, and prints the predicted module
peaks of the config's own split, of the equal-blocks split and of the
peak-balanced split, whose boundaries it prints for ``local.boundaries``.

Example::

    python tools/analysis/split_peaks.py configs/deeplabv3_r101_cityscapes_infopro_hpff.py \\
        --batch-size 2 --input-size 512 1024 --threads 1 --cfg-options model.pretrained=None
"""
import argparse
import copy
import json
import os.path as osp
from typing import List, Optional, Sequence

import mmlocal  # noqa: F401  (compat patches, registrations) before mm*
import torch
from mmengine.config import DictAction
from mmengine.model import revert_sync_batchnorm
from mmengine.registry import MODELS, init_default_scope

from mmlocal.local.split import (measure_peak_costs, module_peaks,
                                 peak_balanced_indices, resolve_boundaries)
from mmlocal.utils.memory import MB
from mmlocal import apis


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('config')
    p.add_argument('--batch-size', type=int, required=True)
    p.add_argument('--input-size', type=int, nargs=2, metavar=('H', 'W'))
    p.add_argument('--num-modules', type=int, help="K (default: the config's)")
    p.add_argument('--device', default='cpu')
    p.add_argument('--threads', type=int)
    p.add_argument('--out-json')
    p.add_argument('--cfg-options', nargs='+', action=DictAction)
    return p.parse_args(argv)


def ends_of(paths: List[str], boundaries: Sequence[str]) -> List[int]:
    return [paths.index(b) for b in boundaries] + [len(paths) - 1]


def main(argv: Optional[Sequence[str]] = None) -> dict:
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    cfg = apis.load_config(args.config, args.cfg_options)
    if args.input_size:
        apis.fit_preprocessor_size(cfg, args.input_size)
    local = copy.deepcopy(cfg.optim_wrapper.get('local') or {})
    init_default_scope(cfg.get('default_scope', 'mmengine'))
    model_cfg = copy.deepcopy(cfg.model)
    if cfg.get('data_preprocessor') is not None:
        model_cfg.setdefault('data_preprocessor', copy.deepcopy(cfg.data_preprocessor))
    device = torch.device(args.device)
    torch.manual_seed(0)
    model = revert_sync_batchnorm(MODELS.build(model_cfg)).to(device).train()
    batch = apis.synthetic_batch(cfg, args.batch_size, args.input_size, 0)
    data = model.data_preprocessor(batch, True)
    backbone = local.get('backbone', 'backbone')
    costs = measure_peak_costs(model, data['inputs'], data['data_samples'],
                               method=local.get('method', dict(type='DGL')),
                               hilo=local.get('hilo'), pff=local.get('pff'),
                               backbone_path=backbone, task=local.get('task'))
    k = args.num_modules or local.get('num_modules') or len(local.get('boundaries', [])) + 1
    splits = {}
    own = resolve_boundaries(model, k if 'boundaries' not in local else None,
                             local.get('boundaries'), local.get('split', 'auto'), backbone,
                             peak_costs=lambda paths: costs)
    splits['config'] = own
    splits['blocks'] = resolve_boundaries(model, k, split='blocks', backbone_path=backbone)
    splits['peak-balanced'] = [costs.paths[i] for i in peak_balanced_indices(costs, k)]

    print(f'{args.config}: batch {args.batch_size}, input {tuple(data["inputs"].shape[-2:])}, '
          f'window {costs.window}; tail (neck/decode/aux heads + task loss) {costs.tail / MB:.1f} MB')
    print('| block | graph (MB) | params (MB) | heads at its output (MB) |')
    print('|---|---:|---:|---:|')
    for i, p in enumerate(costs.paths):
        head = f'{costs.head[i] / MB:.1f}' if i < len(costs.head) else 'tail'
        print(f'| {p} | {costs.graph[i] / MB:.1f} | {costs.params[i] / MB:.1f} | {head} |')
    result = dict(config=args.config, batch_size=args.batch_size,
                  input_size=list(data['inputs'].shape[-2:]), costs=costs.__dict__, splits={})
    print('\n| split | boundaries | predicted module peaks (MB) | largest (MB) |')
    print('|---|---|---|---:|')
    for name, bounds in splits.items():
        peaks = module_peaks(costs, ends_of(costs.paths, bounds))
        result['splits'][name] = dict(boundaries=bounds, peaks_mb=[p / MB for p in peaks])
        short = ', '.join(b.replace(f'{backbone}.', '') for b in bounds)
        print(f"| {name} | {short} | {' / '.join(f'{p / MB:.0f}' for p in peaks)} | "
              f'{max(peaks) / MB:.0f} |')
    if args.out_json:
        with open(args.out_json, 'w') as f:
            json.dump(result, f, indent=2)
    return result


if __name__ == '__main__':
    main()
