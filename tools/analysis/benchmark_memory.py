"""Peak memory and time of one training step, for several configs side by side.

Every config is built with its own registries, its model trained by its own
``optim_wrapper`` (so a local-learning config attaches its heads through its
constructor, as in ``tools/train.py``), on one batch from its own training
pipeline (or synthetic inputs with ``--synthetic``). The configs are measured
in one process, interleaved ``--repeat`` times, and the median is reported.

FLOPs of one step are counted by torch's ``FlopCounterMode`` (convolutions and
matrix products, forward and backward): a cost that, unlike the wall-clock
time, does not depend on the machine's load, so a time ratio can be read
against the work ratio behind it.

Peak memory = bytes of parameters, buffers and optimizer state at the start of
a step (gradients are freed by ``zero_grad``) + the peak increase of live
tensor memory during ``model.train_step`` (``mmlocal.utils.memory.PeakMemoryTracker``:
the CUDA allocator's counters, or on CPU every c10 allocation and free).
The measuring is ``mmlocal.apis.benchmark_configs``; this is its command line.

On CPU, the allocator may warn once "Memory block of unknown size was
allocated before the profiling started": that is the first of the two tracked
steps freeing what the timed steps left; the measured (second) step is exact.

Example::

    python tools/analysis/benchmark_memory.py \\
        configs/resnet32_cifar10_e2e.py configs/resnet32_cifar10_infopro_k8.py \\
        --batch-size 128 --iters 5 --repeat 3 --device cpu --threads 1 \\
        --out-md mem.md --out-json mem.json
"""
import argparse
import json
from typing import Optional, Sequence

import mmlocal  # noqa: F401  (compat patches, registrations) before mm*
import torch
from mmengine.config import DictAction

from mmlocal.apis import benchmark_configs, markdown_table


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Peak training-step memory and step time of configs, '
        'side by side, with ratios to an end-to-end reference.')
    parser.add_argument('configs', nargs='+', help='config files')
    parser.add_argument('--batch-size', type=int, required=True)
    parser.add_argument('--iters', type=int, default=3,
                        help='timed iterations per config and repeat')
    parser.add_argument('--warmup', type=int, default=1,
                        help='untimed iterations first (optimizer state, '
                        'allocator and kernel caches)')
    parser.add_argument('--repeat', type=int, default=1,
                        help='measure the whole config list this many times, '
                        'interleaved, and report medians (noisy machines)')
    parser.add_argument('--device', default='cuda' if torch.cuda.is_available()
                        else 'cpu', help='cpu, cuda or cuda:N')
    parser.add_argument('--synthetic', action='store_true',
                        help='random images (+ labels / segmentation maps) '
                        'instead of the dataset (mmpretrain and mmseg configs)')
    parser.add_argument('--input-size', type=int, nargs=2, metavar=('H', 'W'),
                        help='synthetic input size (default: the config\'s '
                        'crop size)')
    parser.add_argument('--reference', default='_e2e',
                        help='ratios are to the first config whose name '
                        'contains this (default: _e2e; else the first config)')
    parser.add_argument('--threads', type=int,
                        help='CPU threads of torch (default: its own); 1 '
                        'gives steadier CPU timings on a busy machine')
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--out-json', help='write the results as JSON here')
    parser.add_argument('--out-md', help='write the markdown table here')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override settings of every config, '
                        'e.g. model.backbone.depth=20')
    args = parser.parse_args(argv)
    if args.batch_size < 1 or args.iters < 1 or args.repeat < 1 or args.warmup < 0:
        parser.error('--batch-size, --iters and --repeat must be >= 1, '
                     '--warmup >= 0')
    return args


def main(argv: Optional[Sequence[str]] = None) -> dict:
    args = parse_args(argv)
    device = torch.device(args.device)
    if device.type == 'cuda' and not torch.cuda.is_available():
        raise SystemExit('--device cuda: no GPU visible to this torch build; '
                         'use --device cpu.')
    if args.threads:
        torch.set_num_threads(args.threads)
    results = benchmark_configs(
        args.configs, args.batch_size, device, iters=args.iters,
        warmup=args.warmup, repeat=args.repeat, synthetic=args.synthetic,
        input_size=args.input_size, reference=args.reference, seed=args.seed,
        cfg_options=args.cfg_options, log=lambda line: print(line, flush=True))
    table = markdown_table(results)
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
