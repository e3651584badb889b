"""Train ResNet-32 on the bundled CIFAR-10 subset and compare methods.

Every method is a real config of ``configs/`` trained through mmengine's
Runner on ``data/cifar10_mini`` (2,000 train images) with a schedule short
enough for a CPU (6 epochs at batch 64, lr scaled linearly from the
config's 0.8 at 1024), then tested on the 500 test images. Each method runs
in its own process, so its peak memory is its own::

    python tools/demo.py                    # about a minute per method on 2 CPU cores
    python tools/demo.py --methods e2e --epochs 10 --threads 1

Absolute accuracies are low (2,000 images, a few epochs); the table shows
that every method trains, and how they compare, in minutes. Add a method by
appending to ``METHODS``.
"""
import argparse
import json
import os
import os.path as osp
import subprocess
import sys
import time
from typing import Dict, List, NamedTuple

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))


class Method(NamedTuple):
    key: str  # command-line name and work-dir name
    name: str  # shown in the table
    config: str  # relative to the repository root
    cfg_options: Dict  # method-specific overrides, after the demo's own


#: The demo's methods, in table order.
METHODS: List[Method] = [
    Method('e2e', 'E2E (backprop)', 'configs/resnet32_cifar10_e2e.py', {}),
    Method('dgl', 'DGL K=16', 'configs/resnet32_cifar10_dgl_k16.py', {}),
    Method('dgl_hpff', 'DGL+HPFF K=16', 'configs/resnet32_cifar10_dgl_hpff_k16.py', {}),
]


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Train ResNet-32 on the bundled CIFAR-10 subset with each '
        'method and print a comparison table.')
    parser.add_argument('--methods', nargs='+', choices=[m.key for m in METHODS],
                        default=[m.key for m in METHODS])
    parser.add_argument('--epochs', type=int, default=6)
    parser.add_argument('--batch-size', type=int, default=64)
    parser.add_argument('--lr', type=float, default=None,
                        help='default: the config lr scaled linearly to the '
                        'batch size (0.8 at 1024 -> 0.05 at 64)')
    parser.add_argument('--data-root', default=osp.join(ROOT, 'data', 'cifar10_mini'))
    parser.add_argument('--work-dir', default=osp.join(ROOT, 'work_dirs', 'demo'))
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--threads', type=int, default=None,
                        help='torch CPU threads (default: torch\'s choice); 1 '
                        'gives steadier timings on a busy machine')
    parser.add_argument('--run-one', help=argparse.SUPPRESS)  # child process
    return parser.parse_args()


def demo_options(args: argparse.Namespace, base_lr: float,
                 base_batch: int) -> Dict:
    """The short CPU schedule shared by every method (like for like)."""
    lr = args.lr if args.lr is not None else base_lr * args.batch_size / base_batch
    opts = {
        'optim_wrapper.optimizer.lr': lr,
        # 1 warm-up epoch from 0.1 * lr, then cosine to 0 over the run
        'param_scheduler': [
            dict(type='LinearLR', start_factor=0.1, by_epoch=True, begin=0,
                 end=1, convert_to_iter_based=True),
            dict(type='CosineAnnealingLR', T_max=args.epochs, eta_min=0.0,
                 by_epoch=True, begin=0, end=args.epochs,
                 convert_to_iter_based=True),
        ],
        'train_cfg': dict(by_epoch=True, max_epochs=args.epochs, val_interval=args.epochs),
        'train_dataloader.batch_size': args.batch_size,
        'test_dataloader.batch_size': 250,
        'default_hooks.checkpoint': dict(interval=args.epochs, max_keep_ckpts=1,
                                         save_best=None),
        'default_hooks.logger.interval': 4,
        'randomness': dict(seed=args.seed),
        # the test split is evaluated once, after training (below)
        'val_dataloader': None, 'val_cfg': None, 'val_evaluator': None,
    }
    for split in ('train_dataloader', 'test_dataloader'):
        opts[f'{split}.dataset.data_root'] = args.data_root
        opts[f'{split}.num_workers'] = 0  # 32x32 JPEGs: decoding is cheap
        opts[f'{split}.persistent_workers'] = False
    return opts


def run_one(args: argparse.Namespace, method: Method) -> Dict:
    """Train and test one method in this process; return its results."""
    import mmlocal  # noqa: F401  (compat shims and registration first)
    import torch
    from mmengine.config import Config
    from mmengine.runner import Runner

    from mmlocal.apis import set_default_collate

    if args.threads:
        torch.set_num_threads(args.threads)
    cfg = Config.fromfile(osp.join(ROOT, method.config))
    cfg.merge_from_dict(demo_options(args, cfg.optim_wrapper.optimizer.lr,
                                     cfg.train_dataloader.batch_size))
    cfg.merge_from_dict(method.cfg_options)
    cfg.work_dir = osp.join(args.work_dir, method.key)
    set_default_collate(cfg)

    peak_mb = peak_step_memory(cfg, args.batch_size, args.seed)
    runner = Runner.from_cfg(cfg)
    start = time.perf_counter()
    runner.train()
    train_time = time.perf_counter() - start
    metrics = runner.test()
    return dict(
        method=method.name,
        config=method.config,
        accuracy=float(metrics['accuracy/top1']),
        train_time_s=train_time,
        # peak live tensor bytes of one training step (mmlocal.utils.memory)
        peak_memory_mb=peak_mb,
        epochs=args.epochs,
        batch_size=args.batch_size,
    )


def peak_step_memory(cfg, batch_size: int, seed: int) -> float:
    """Peak live tensor memory (MB) of a training step at the demo's batch
    size: CPU allocator events (or the CUDA allocator), see
    ``mmlocal.apis.measure_step``."""
    import torch

    from mmlocal.apis import measure_step, real_batch
    batch = real_batch(cfg, batch_size, seed)
    device = 'cuda' if torch.cuda.is_available() else 'cpu'
    return measure_step(cfg, batch, device, warmup=1, iters=1, seed=seed)['peak_mb']


def format_table(results: List[Dict]) -> str:
    header = ('| method | test accuracy (%) | peak training memory (MB) '
              '| memory vs E2E | train time (s) |')
    lines = [header, '|---|---:|---:|---:|---:|']
    ref = next((r for r in results if 'error' not in r), None)
    for r in results:
        if 'error' in r:
            lines.append(f'| {r["method"]} | failed: {r["error"]} | - | - | - |')
            continue
        ratio = r['peak_memory_mb'] / ref['peak_memory_mb']
        lines.append(f'| {r["method"]} | {r["accuracy"]:.2f} | {r["peak_memory_mb"]:.1f} '
                     f'| {ratio:.2f}x | {r["train_time_s"]:.1f} |')
    return '\n'.join(lines)


def plot(results: List[Dict], path: str) -> None:
    """Accuracy, peak memory and time per method, side by side."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    ok = [r for r in results if 'error' not in r]
    names = [r['method'] for r in ok]
    fig, axes = plt.subplots(1, 3, figsize=(11, 3.4))
    for ax, key, label in zip(axes, ('accuracy', 'peak_memory_mb', 'train_time_s'),
                              ('test accuracy (%)', 'peak training memory (MB)',
                               'train time (s)')):
        bars = ax.bar(names, [r[key] for r in ok], color=['0.5', 'tab:blue', 'tab:orange'][:len(ok)])
        ax.bar_label(bars, fmt='%.1f')
        ax.set_title(label)
        ax.tick_params(axis='x', labelsize=8)
    fig.suptitle('ResNet-32 on the bundled CIFAR-10 subset (CPU)')
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main() -> int:
    args = parse_args()
    by_key = {m.key: m for m in METHODS}
    if args.run_one:  # child: one method, results to a JSON file
        result = run_one(args, by_key[args.run_one])
        out = osp.join(args.work_dir, args.run_one, 'demo_result.json')
        with open(out, 'w') as f:
            json.dump(result, f, indent=2)
        return 0

    if not osp.isdir(osp.join(args.data_root, 'train')):
        print(f'tools/demo.py: error: no data under {args.data_root!r}; the '
              'bundled subset is data/cifar10_mini (see data/README.md)',
              file=sys.stderr)
        return 2
    results = []
    for key in args.methods:
        method = by_key[key]
        print(f'[demo] training {method.name} ({method.config}): '
              f'{args.epochs} epochs, batch {args.batch_size}', flush=True)
        os.makedirs(osp.join(args.work_dir, key), exist_ok=True)
        out = osp.join(args.work_dir, key, 'demo_result.json')
        if osp.exists(out):
            os.remove(out)
        child = [sys.executable, osp.abspath(__file__), '--run-one', key]
        for flag in ('epochs', 'batch_size', 'lr', 'data_root', 'work_dir', 'seed',
                     'threads'):
            value = getattr(args, flag)
            if value is not None:
                child += [f'--{flag.replace("_", "-")}', str(value)]
        log = osp.join(args.work_dir, key, 'demo_stdout.log')
        with open(log, 'w') as f:
            proc = subprocess.run(child, stdout=f, stderr=subprocess.STDOUT, cwd=ROOT)
        if proc.returncode != 0 or not osp.exists(out):
            print(f'[demo] {method.name} failed (exit {proc.returncode}); see {log}',
                  file=sys.stderr)
            results.append(dict(method=method.name, error=f'exit {proc.returncode}'))
            continue
        with open(out) as f:
            results.append(json.load(f))
        print(f'[demo] {method.name}: {results[-1]["accuracy"]:.2f}% '
              f'in {results[-1]["train_time_s"]:.1f} s', flush=True)

    print(f'\nResNet-32, CIFAR-10 subset ({args.data_root}): '
          f'{args.epochs} epochs at batch {args.batch_size}, CPU; '
          'tested on its 500 test images\n')
    print(format_table(results))
    with open(osp.join(args.work_dir, 'results.json'), 'w') as f:
        json.dump(results, f, indent=2)
    plot(results, osp.join(args.work_dir, 'demo.png'))
    print(f'\nplot: {osp.join(args.work_dir, "demo.png")}')
    return 0 if all('error' not in r for r in results) else 1


if __name__ == '__main__':
    sys.exit(main())
