"""Train several configs with one shared schedule and tabulate test error,
peak training memory and wall time side by side.

Every config is trained through the real mmengine Runner on the same data
root, with the same epochs, batch size, learning rate and (optional) random
subset, so rows differ only by the method. Peak memory is the peak of live
tensor bytes of a training step at the benchmark's batch size
(``mmlocal.utils.memory``: CUDA allocator peak, CPU allocator events),
measured in the same process right before training.

Example (CPU, reduced schedule)::

    python tools/analysis/benchmark_accuracy.py \
        configs/resnet32_cifar10_e2e.py configs/resnet32_cifar10_dgl_k16.py \
        configs/resnet32_cifar10_dgl_hpff_k16.py \
        --data-root data/cifar10 --train-subset 5000 --epochs 10 \
        --batch-size 128 --lr 0.1 --out-md work_dirs/acc.md --out-json work_dirs/acc.json

Methods trained in parallel processes (one ``--out-json`` each, same schedule)
are tabulated together with ``--from-json a.json b.json``. With rows named
``e2e`` and ``dgl`` (``--gap``) the table gives the share of the DGL->E2E error
gap each method closes, the figure the HPFF and MLAAN papers quote.
"""
import argparse
import json
import math
import os
import os.path as osp
import random
import time
from typing import Dict, List, Optional, Sequence

import mmlocal  # noqa: F401  (compat + registration first)

import torch
from mmengine.config import Config, DictAction
from mmengine.logging import print_log
from mmengine.runner import Runner

from mmlocal.apis import machine_info, measure_step, real_batch, unique_names


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('configs', nargs='*', help='configs to train (none with --from-json)')
    p.add_argument('--data-root', help='dataset root shared by every config')
    p.add_argument('--epochs', type=int, default=10)
    p.add_argument('--batch-size', type=int, default=128)
    p.add_argument('--lr', type=float, help='peak learning rate (default: the config\'s, '
                   'scaled linearly to --batch-size from auto_scale_lr)')
    p.add_argument('--warmup-epochs', type=float, default=1.)
    p.add_argument('--train-subset', type=int, help='random training subset size')
    p.add_argument('--test-subset', type=int, help='random test subset size')
    p.add_argument('--num-workers', type=int, default=2)
    p.add_argument('--seed', type=int, default=0)
    p.add_argument('--threads', type=int, help='torch CPU threads')
    p.add_argument('--device', default='cuda' if torch.cuda.is_available() else 'cpu')
    p.add_argument('--memory-iters', type=int, default=1,
                   help='tracked steps for the peak memory (0: skip)')
    p.add_argument('--work-dir', default='work_dirs/benchmark_accuracy')
    p.add_argument('--out-md')
    p.add_argument('--out-json')
    p.add_argument('--names', nargs='+', help='row names (default: config stems)')
    p.add_argument('--gap', nargs=2, metavar=('UPPER', 'LOWER'), default=('e2e', 'dgl'),
                   help='rows whose error gap the others are measured against: the '
                   'share of LOWER->UPPER error gap each row closes (default: e2e dgl; '
                   'the column is left out unless both rows exist)')
    p.add_argument('--from-json', nargs='+', metavar='JSON',
                   help='tabulate the rows of earlier runs\' --out-json files together '
                   '(e.g. methods trained in parallel processes) instead of training')
    p.add_argument('--cfg-options', nargs='+', action=DictAction)
    args = p.parse_args(argv)
    if bool(args.configs) == bool(args.from_json):
        p.error('give configs to train, or --from-json files to tabulate (not both)')
    return args


def _subset(dataset_cfg: dict, size: Optional[int], seed: int) -> None:
    """A random subset: the class-folder datasets are sorted by class, so the
    first N samples would be a few classes only."""
    if not size:
        return
    from mmpretrain.registry import DATASETS
    full = DATASETS.build({**dataset_cfg, 'lazy_init': True})
    full.full_init()
    n = len(full)
    dataset_cfg['indices'] = sorted(random.Random(seed).sample(range(n), min(size, n)))


def shared_schedule(cfg: Config, args: argparse.Namespace, work_dir: str) -> Config:
    """Apply the benchmark's common data root, schedule and subset."""
    cfg.work_dir = work_dir
    cfg.randomness = dict(seed=args.seed, deterministic=False)
    for key in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        loader = cfg[key]
        if args.data_root:
            loader.dataset.data_root = args.data_root
        loader.batch_size = args.batch_size
        loader.num_workers = args.num_workers
        loader.persistent_workers = args.num_workers > 0
    _subset(cfg.train_dataloader.dataset, args.train_subset, args.seed)
    _subset(cfg.val_dataloader.dataset, args.test_subset, args.seed)
    cfg.test_dataloader = cfg.val_dataloader
    base_lr = cfg.optim_wrapper.optimizer.lr
    base_bs = cfg.get('auto_scale_lr', {}).get('base_batch_size', args.batch_size)
    lr = args.lr if args.lr else base_lr * args.batch_size / base_bs
    cfg.optim_wrapper.optimizer.lr = lr
    cfg.train_cfg = dict(by_epoch=True, max_epochs=args.epochs, val_interval=args.epochs)
    warm = max(min(args.warmup_epochs, args.epochs - 1), 0)
    cfg.param_scheduler = [
        dict(type='LinearLR', start_factor=0.1, by_epoch=True, begin=0, end=warm,
             convert_to_iter_based=True),
        dict(type='CosineAnnealingLR', T_max=args.epochs, by_epoch=True, begin=0,
             end=args.epochs, convert_to_iter_based=True),
    ] if warm > 0 else [dict(type='CosineAnnealingLR', T_max=args.epochs, by_epoch=True,
                             begin=0, end=args.epochs, convert_to_iter_based=True)]
    cfg.default_hooks.checkpoint = dict(type='CheckpointHook', interval=args.epochs,
                                        max_keep_ckpts=1)
    cfg.default_hooks.logger = dict(type='LoggerHook', interval=50)
    if args.device == 'cpu':
        cfg.env_cfg = dict(cudnn_benchmark=False, dist_cfg=dict(backend='gloo'))
    return cfg


def top1(metrics: Dict[str, float]) -> float:
    for key in ('accuracy/top1', 'accuracy', 'top1'):
        if key in metrics:
            return float(metrics[key])
    raise KeyError(f'no top-1 accuracy in {sorted(metrics)}')


def peak_memory(cfg: Config, args: argparse.Namespace) -> Optional[float]:
    """Peak training-step memory (MB) at the benchmark's batch size."""
    if args.memory_iters <= 0:
        return None
    batch = real_batch(cfg, args.batch_size, args.seed)
    run = measure_step(cfg, batch, args.device, warmup=1, iters=args.memory_iters,
                       seed=args.seed)
    return run['peak_mb']


def run_one(path: str, name: str, args: argparse.Namespace) -> dict:
    cfg = Config.fromfile(path)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    cfg = shared_schedule(cfg, args, osp.join(args.work_dir, name))
    memory = peak_memory(cfg.copy(), args)
    if args.device == 'cuda':
        torch.cuda.reset_peak_memory_stats()
    runner = Runner.from_cfg(cfg)
    start = time.perf_counter()
    runner.train()
    train_time = time.perf_counter() - start
    metrics = runner.test()
    acc = top1(metrics)
    row = dict(name=name, config=path, test_error=100. - acc, accuracy=acc,
               test_images=len(runner.test_dataloader.dataset),
               peak_memory_mb=memory, train_time_s=train_time,
               params_m=sum(p.numel() for n, p in runner.model.named_parameters()
                            if not n.startswith('local_learner.')) / 1e6)
    if args.device == 'cuda':
        row['runner_peak_memory_mb'] = torch.cuda.max_memory_allocated() / 2**20
    return row


def standard_error(row: dict) -> Optional[float]:
    """Binomial standard error (points) of a test error over its images: what
    two rows must differ by before the difference means anything."""
    n, p = row.get('test_images'), row['test_error'] / 100.
    return 100. * math.sqrt(p * (1. - p) / n) if n else None


def gap_closed(rows: List[dict], upper: str, lower: str) -> Dict[str, float]:
    """Share (%) of the ``lower`` -> ``upper`` test-error gap each row closes:
    0 at ``lower`` (e.g. DGL), 100 at ``upper`` (e.g. E2E), as the papers
    report HPFF's and MLAAN's gains."""
    by_name = {r['name']: r for r in rows}
    if upper not in by_name or lower not in by_name:
        return {}
    gap = by_name[lower]['test_error'] - by_name[upper]['test_error']
    if gap == 0:
        return {}
    return {r['name']: 100. * (by_name[lower]['test_error'] - r['test_error']) / gap
            for r in rows}


def markdown(rows: List[dict], reference: Optional[str] = None,
             gap: Sequence[str] = ('e2e', 'dgl')) -> str:
    ref = next((r for r in rows if r['name'] == reference or '_e2e' in r['name']), rows[0])
    closed = gap_closed(rows, *gap)
    gap_head = f' closes {gap[1]}->{gap[0]} gap |' if closed else ''
    lines = ['| method | test error (%) | ± s.e. | peak memory (MB) | memory vs E2E | '
             'train time (s) |' + gap_head,
             '|---|---:|---:|---:|---:|---:|' + ('---:|' if closed else '')]
    for r in rows:
        mem = r['peak_memory_mb']
        ratio = f"{mem / ref['peak_memory_mb']:.2f}x" if mem and ref['peak_memory_mb'] else '-'
        se = standard_error(r)
        line = (f"| {r['name']} | {r['test_error']:.2f} | {'-' if se is None else f'{se:.2f}'} | "
                f"{'-' if mem is None else f'{mem:.1f}'} | {ratio} | {r['train_time_s']:.0f} |")
        if closed:
            line += f" {closed[r['name']]:.0f}% |"
        lines.append(line)
    return '\n'.join(lines)


def load_rows(paths: Sequence[str]) -> List[dict]:
    """Rows of several ``--out-json`` files, which must share one schedule."""
    rows, schedule = [], None
    for path in paths:
        with open(path) as f:
            saved = json.load(f)
        sched = {k: saved['args'].get(k) for k in SCHEDULE_KEYS}
        if schedule is not None and sched != schedule:
            raise SystemExit(f'{path} was trained with another schedule: {sched} != '
                             f'{schedule}; only rows of one schedule compare')
        schedule = sched
        rows += saved['rows']
    return rows


SCHEDULE_KEYS = ('data_root', 'epochs', 'batch_size', 'lr', 'warmup_epochs',
                 'train_subset', 'test_subset', 'seed', 'cfg_options')


def main(argv: Optional[Sequence[str]] = None) -> List[dict]:
    args = parse_args(argv)
    if args.from_json:
        rows = load_rows(args.from_json)
        with open(args.from_json[0]) as f:
            saved = json.load(f)
        info, sched = saved['machine'], argparse.Namespace(**saved['args'])
    else:
        rows, info, sched = train_all(args), None, args
    if info is None:
        info = machine_info(args.device)
    table = markdown(rows, gap=args.gap)
    header = (f"Machine: {info}\nSchedule: {sched.epochs} epochs, batch {sched.batch_size}, "
              f"train subset {sched.train_subset or 'all'}, test subset "
              f"{sched.test_subset or 'all'}, seed {sched.seed}\n")
    print(header + '\n' + table)
    for path, text in ((args.out_md, header + '\n' + table + '\n'),
                       (args.out_json, json.dumps(dict(machine=info, args=vars(sched), rows=rows),
                                                  indent=2, default=str))):
        if path:
            os.makedirs(osp.dirname(osp.abspath(path)), exist_ok=True)
            with open(path, 'w') as f:
                f.write(text)
    return rows


def train_all(args: argparse.Namespace) -> List[dict]:
    if args.threads:
        torch.set_num_threads(args.threads)
    names = args.names or unique_names(args.configs)
    if len(names) != len(args.configs):
        raise SystemExit('--names needs one name per config')
    rows = []
    for i, (path, name) in enumerate(zip(args.configs, names), 1):
        print_log(f'[benchmark_accuracy] ({i}/{len(names)}) {name}: training '
                  f'{args.epochs} epochs', logger='current')
        row = run_one(path, name, args)
        rows.append(row)
        print_log(f"[benchmark_accuracy] ({i}/{len(names)}) {name}: test error "
                  f"{row['test_error']:.2f}%, peak memory {row['peak_memory_mb']} MB, "
                  f"{row['train_time_s']:.0f} s", logger='current')
    return rows


if __name__ == '__main__':
    main()
