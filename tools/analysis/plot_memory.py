"""Peak training memory (and step time) vs K for several local methods.

One process, one batch, every (method, K) measured side by side with
``mmlocal.apis.measure_step`` (peak live tensor bytes: CUDA allocator peak, or
CPU allocator events), next to the E2E config as the reference::

    python tools/analysis/plot_memory.py configs/resnet110_cifar10_e2e.py \
        --methods dgl=configs/resnet110_cifar10_dgl_k55.py \
                  infopro=configs/resnet110_cifar10_infopro_k55.py \
        --ks 1 2 4 8 16 32 55 --batch-size 64 --device cpu \
        --out-prefix docs/memory_vs_k_resnet110

K is set with ``optim_wrapper.local.num_modules`` (the config's split rule:
the papers' presets where they exist, else equal blocks). Writes
``PREFIX.json``, ``PREFIX.md`` and ``PREFIX.png``.
"""
import argparse
import json
import os
import os.path as osp
import sys
from typing import Dict, List, Optional, Sequence

import mmlocal  # noqa: F401

import torch

from mmlocal.apis import load_config, machine_info, measure_step, real_batch, synthetic_batch


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('e2e', help='the E2E config (reference)')
    p.add_argument('--methods', nargs='+', required=True, metavar='NAME=CONFIG',
                   help='local-learning configs; K is overridden')
    p.add_argument('--ks', nargs='+', type=int, required=True)
    p.add_argument('--batch-size', type=int, default=64)
    p.add_argument('--iters', type=int, default=2, help='timed steps')
    p.add_argument('--warmup', type=int, default=1)
    p.add_argument('--threads', type=int, default=1,
                   help='torch threads; 1 gives steadier CPU timings on a busy machine')
    p.add_argument('--device', default='cuda' if torch.cuda.is_available() else 'cpu')
    p.add_argument('--data-root', help='override the configs\' data roots')
    p.add_argument('--synthetic', action='store_true')
    p.add_argument('--input-size', type=int, nargs=2, default=None)
    p.add_argument('--seed', type=int, default=0)
    p.add_argument('--out-prefix', required=True)
    return p.parse_args(argv)


def _options(args, k: Optional[int]) -> dict:
    opts = {}
    if k is not None:
        opts['optim_wrapper.local.num_modules'] = k
    if args.data_root:
        for key in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
            opts[f'{key}.dataset.data_root'] = args.data_root
    return opts


def measure_one(path: str, k: Optional[int], args: argparse.Namespace) -> Dict:
    cfg = load_config(path, _options(args, k))
    if args.synthetic:
        batch = synthetic_batch(cfg, args.batch_size, args.input_size, args.seed)
    else:
        batch = real_batch(cfg, args.batch_size, args.seed)
    return measure_step(cfg, batch, args.device, warmup=args.warmup, iters=args.iters,
                        seed=args.seed)


def plot(results: Dict, e2e: Dict, path: str, title: str) -> None:
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(1, 2, figsize=(10, 4))
    for name, rows in results.items():
        ks = [r['k'] for r in rows]
        ax[0].plot(ks, [r['peak_mb'] for r in rows], marker='o', label=name)
        ax[1].plot(ks, [r['step_time_s'] / e2e['step_time_s'] for r in rows], marker='o',
                   label=name)
    ax[0].axhline(e2e['peak_mb'], color='k', linestyle='--', label='E2E')
    ax[1].axhline(1.0, color='k', linestyle='--', label='E2E')
    for a, ylabel in zip(ax, ('peak training memory (MB)', 'step time / E2E')):
        a.set_xscale('log', base=2)
        a.set_xlabel('K (local modules)')
        a.set_ylabel(ylabel)
        a.grid(True, alpha=0.3)
        a.legend()
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def markdown(results: Dict, e2e: Dict) -> str:
    lines = ['| method | K | peak memory (MB) | vs E2E | step time (s) | vs E2E |',
             '|---|---:|---:|---:|---:|---:|',
             f"| E2E | 1 | {e2e['peak_mb']:.1f} | 1.00x | {e2e['step_time_s']:.3f} | 1.00x |"]
    for name, rows in results.items():
        for r in rows:
            lines.append(f"| {name} | {r['k']} | {r['peak_mb']:.1f} | "
                         f"{r['peak_mb'] / e2e['peak_mb']:.2f}x | {r['step_time_s']:.3f} | "
                         f"{r['step_time_s'] / e2e['step_time_s']:.2f}x |")
    return '\n'.join(lines)


def main(argv: Optional[Sequence[str]] = None) -> Dict:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    methods = dict(m.split('=', 1) for m in args.methods)
    print(f'[plot_memory] E2E: {args.e2e}', flush=True)
    e2e = measure_one(args.e2e, None, args)
    results: Dict[str, List[Dict]] = {}
    for name, path in methods.items():
        for k in args.ks:
            run = measure_one(path, k, args)
            run['k'] = k
            results.setdefault(name, []).append(run)
            print(f"[plot_memory] {name} K={k}: {run['peak_mb']:.1f} MB "
                  f"({run['peak_mb'] / e2e['peak_mb']:.2f}x E2E), step "
                  f"{run['step_time_s']:.3f} s ({run['step_time_s'] / e2e['step_time_s']:.2f}x)",
                  flush=True)
    info = machine_info(args.device)
    table = markdown(results, e2e)
    header = (f"Machine: {info}; batch {args.batch_size}; {args.threads} thread(s); "
              f"command: python tools/analysis/plot_memory.py {' '.join(sys.argv[1:])}\n")
    print(header + '\n' + table)
    os.makedirs(osp.dirname(osp.abspath(args.out_prefix)), exist_ok=True)
    with open(args.out_prefix + '.md', 'w') as f:
        f.write(header + '\n' + table + '\n')
    with open(args.out_prefix + '.json', 'w') as f:
        json.dump(dict(machine=info, e2e=e2e, results=results, args=vars(args)), f, indent=2)
    plot(results, e2e, args.out_prefix + '.png',
         f"{osp.basename(args.e2e).replace('_e2e.py', '')}, batch {args.batch_size}, {args.device}")
    return dict(e2e=e2e, results=results)


if __name__ == '__main__':
    main()
