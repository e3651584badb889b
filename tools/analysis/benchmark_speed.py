"""What one training step costs, for several configs against the first (E2E).

For each config, in one process: the step-time ratio to the reference (each
config's iterations interleaved with the others', round after round, and the
median of the per-round ratios reported, so a load change on a shared
machine hits every config alike), the FLOPs ratio (``FlopCounterMode``),
aten ops per step and host syncs per step (``aten._local_scalar_dense``:
what ``.item()``, ``float(t)``, ``bool(t)`` and ``if t:`` dispatch to),
counted inside one ``train_step``. An iteration is what the Runner runs:
``train_step``, then the reads of ``RuntimeInfoHook`` and ``LocalLossHook``.
The measuring is ``mmlocal.apis.benchmark_speed``; this is its command line.

A config may carry overrides of its own, ``CONFIG,key=value[,key=value]``,
e.g. both PFF modes of one config side by side.

Example (the table of docs/benchmarks.md, "Speed")::

    python tools/analysis/benchmark_speed.py \\
        configs/resnet32_cifar10_e2e.py configs/resnet32_cifar10_dgl_k16.py \\
        configs/resnet32_cifar10_dgl_hpff_k16.py \\
        configs/resnet32_cifar10_dgl_hpff_k16.py,optim_wrapper.local.pff.mode=batched \\
        --batch-size 128 --synthetic --input-size 32 32 --threads 1 --rounds 5 \\
        --out-md speed.md --out-json speed.json
"""
import argparse
import json
from typing import Optional, Sequence

import mmlocal  # noqa: F401  (compat patches, registrations) before mm*
import torch
from mmengine.config import DictAction
from mmengine.logging import MMLogger

from mmlocal.apis import benchmark_speed, speed_table


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Step time, FLOPs, aten ops and host syncs per training step of configs, '
        'against an end-to-end reference, interleaved in one process.')
    parser.add_argument('configs', nargs='+', help='CONFIG or CONFIG,key=value[,key=value]')
    parser.add_argument('--batch-size', type=int, required=True)
    parser.add_argument('--rounds', type=int, default=5,
                        help='timed rounds; each runs one iteration of every config')
    parser.add_argument('--warmup', type=int, default=1,
                        help='untimed iterations per config first (optimizer state, caches)')
    parser.add_argument('--device', default='cuda' if torch.cuda.is_available() else 'cpu',
                        help='cpu, cuda or cuda:N')
    parser.add_argument('--synthetic', action='store_true',
                        help='random images and targets instead of the dataset')
    parser.add_argument('--input-size', type=int, nargs=2, metavar=('H', 'W'),
                        help="synthetic input size (default: the config's crop size)")
    parser.add_argument('--reference', default='_e2e',
                        help='ratios are to the first config whose name contains this '
                        '(default: _e2e; else the first config)')
    parser.add_argument('--threads', type=int, default=1,
                        help='CPU threads of torch (default 1: the issue tables)')
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--out-json', help='write the results as JSON here')
    parser.add_argument('--out-md', help='write the markdown table here')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override settings of every config, e.g. model.backbone.depth=20')
    args = parser.parse_args(argv)
    if args.batch_size < 1 or args.rounds < 1 or args.warmup < 0 or args.threads < 1:
        parser.error('--batch-size, --rounds and --threads must be >= 1, --warmup >= 0')
    return args


def main(argv: Optional[Sequence[str]] = None) -> dict:
    args = parse_args(argv)
    device = torch.device(args.device)
    if device.type == 'cuda' and not torch.cuda.is_available():
        raise SystemExit('--device cuda: no GPU visible to this torch build; use --device cpu.')
    torch.set_num_threads(args.threads)
    MMLogger.get_instance('benchmark_speed', log_level='WARNING')  # no local plan tables
    results = benchmark_speed(
        args.configs, args.batch_size, rounds=args.rounds, warmup=args.warmup,
        device=device, synthetic=args.synthetic, input_size=args.input_size,
        reference=args.reference, seed=args.seed, cfg_options=args.cfg_options,
        log=lambda line: print(line, flush=True))
    table = speed_table(results)
    print('\n' + table)
    if args.out_md:
        with open(args.out_md, 'w') as f:
            f.write(table)
    if args.out_json:
        with open(args.out_json, 'w') as f:
            json.dump(results, f, indent=2, default=str)
    return results


if __name__ == '__main__':
    main()
