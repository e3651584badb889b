"""Measure what each local module of a config holds at its peak, and the split
that balances it (what ``split='memory'`` measures at build time, from
``mmlocal.analysis.peaks``).

Builds the config's model, preprocesses one synthetic batch at the training
size, measures :class:`~mmlocal.analysis.PeakCosts` (per block: saved graph
bytes, parameter bytes; heads' and tail's allocator peaks) with the config's
local settings and optimizer, and prints the predicted module peaks of the
config's own split, of the equal-blocks split and of the peak-balanced split,
whose boundaries it prints for ``local.boundaries``.

Example::

    python tools/analysis/split_peaks.py configs/deeplabv3_r101_cityscapes_infopro_hpff.py \\
        --batch-size 2 --input-size 512 1024 --threads 1 --cfg-options model.pretrained=None
"""
import argparse
import copy
import dataclasses
import json
from typing import Optional, Sequence

import mmlocal  # noqa: F401  (compat patches, registrations) before mm*
import torch
from mmengine.config import DictAction
from mmengine.model import revert_sync_batchnorm

from mmlocal import apis
from mmlocal.analysis import compare_splits, measure_peak_costs, optimizer_state_ratio
from mmlocal.local.config import LocalConfig
from mmlocal.local.probe import probe_blocks
from mmlocal.local.split import resolve_boundaries
from mmlocal.utils.memory import MB


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


def main(argv: Optional[Sequence[str]] = None) -> dict:
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    cfg = apis.load_config(args.config, args.cfg_options)
    if args.input_size:
        apis.fit_preprocessor_size(cfg, args.input_size)
    local = LocalConfig.parse(copy.deepcopy(cfg.optim_wrapper.get('local') or {}))
    torch.manual_seed(0)
    model = revert_sync_batchnorm(apis.build_model(cfg)).to(args.device).train()
    batch = apis.synthetic_batch(cfg, args.batch_size, args.input_size, 0)
    data = model.data_preprocessor(batch, True)
    optimizer = cfg.optim_wrapper.get('optimizer')
    costs = measure_peak_costs(model, data['inputs'], data['data_samples'], local,
                               optimizer_state_ratio(optimizer) if optimizer else 0.)
    k = args.num_modules or local.num_modules or len(local.boundaries or ()) + 1
    own = local.boundaries
    if own is None or args.num_modules:
        size = tuple(data['inputs'].shape[-2:])
        own = resolve_boundaries(
            model, k, split=local.split, backbone_path=local.backbone,
            block_costs=lambda paths: list(probe_blocks(model, local.backbone, paths,
                                                        size).costs.values()),
            peak_costs=lambda paths: costs)
    blocks = resolve_boundaries(model, k, split='blocks', backbone_path=local.backbone)
    splits = compare_splits(costs, {'config': own, 'blocks': blocks})

    print(f'{args.config}: batch {args.batch_size}, input {tuple(data["inputs"].shape[-2:])}, '
          f'window {costs.window}; tail (neck/decode/aux heads + task loss) {costs.tail / MB:.1f} '
          f'MB; parameters, buffers and optimizer state {costs.static / MB:.1f} MB')
    print('| block | graph (MB) | params (MB) | heads at its output (MB) |')
    print('|---|---:|---:|---:|')
    for i, p in enumerate(costs.paths):
        head = f'{costs.head[i] / MB:.1f}' if i < len(costs.head) else 'tail'
        print(f'| {p} | {costs.graph[i] / MB:.1f} | {costs.params[i] / MB:.1f} | {head} |')
    print('\n| split | boundaries | predicted module peaks (MB) | largest (MB) | step (MB) |')
    print('|---|---|---|---:|---:|')
    for name, row in splits.items():
        peaks = row['module_peaks']
        short = ', '.join(b.replace(f'{local.backbone}.', '') for b in row['boundaries'])
        print(f"| {name} | {short} | {' / '.join(f'{p / MB:.0f}' for p in peaks)} | "
              f"{max(peaks) / MB:.0f} | {row['predicted_peak'] / MB:.0f} |")
    result = dict(config=args.config, batch_size=args.batch_size,
                  input_size=list(data['inputs'].shape[-2:]), costs=dataclasses.asdict(costs),
                  splits={name: dict(boundaries=row['boundaries'],
                                     peaks_mb=[p / MB for p in row['module_peaks']],
                                     predicted_peak_mb=row['predicted_peak'] / MB)
                          for name, row in splits.items()})
    if args.out_json:
        with open(args.out_json, 'w') as f:
            json.dump(result, f, indent=2)
    return result


if __name__ == '__main__':
    main()
