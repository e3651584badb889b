"""Communication overhead of distributed local learning, per step.

Trains a CIFAR ResNet for a few steps on the same global batch G

* in one process (batch G, all CPU threads), and
* in ``--nproc`` processes (batch G/nproc each, threads split between them,
  gloo on CPU, NCCL on CUDA), the model wrapped in mmengine's
  ``MMDistributedDataParallel`` and the optim wrapper built after wrapping,
  as the Runner does,

* in one process with one rank's share (batch G/nproc, one rank's threads):
  the work of a rank without communication,

and reports median step times; the overhead per step is the DDP step minus
the one-rank-share step. For local learning it also gives the time a step
spends in ``GradientSynchronizer.sync`` (flatten, all-reduce, write back,
and waiting for the slower rank; with ``--overlap`` only what is left at the
step) and the all-reduce alone (all ranks aligned by a barrier first). E2E
runs use stock DDP, whose all-reduce hides inside backward.

Example (the numbers of docs/benchmarks.md):
    python tools/analysis/benchmark_dist.py --depth 32 --num-modules 8 \
        --batch 64 --iters 20 --method DGL E2E
"""
import argparse
import datetime
import glob
import json
import os
import os.path as osp
import socket
import statistics
import time

import torch
import torch.multiprocessing as mp

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CLASSES = ('airplane', 'automobile', 'bird', 'cat', 'deer', 'dog', 'frog',
           'horse', 'ship', 'truck')


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--method', nargs='+', default=['DGL', 'E2E'],
                        help='E2E, DGL, InfoPro or PredSim (several: one run each)')
    parser.add_argument('--depth', type=int, default=32, help='CIFAR ResNet depth')
    parser.add_argument('--num-modules', type=int, default=8, help='K of local learning')
    parser.add_argument('--hilo', type=int, default=0, help='HiLo window k (0: off)')
    parser.add_argument('--batch', type=int, default=64, help='global batch G')
    parser.add_argument('--nproc', type=int, default=2, help='processes of the DDP run')
    parser.add_argument('--iters', type=int, default=20, help='timed steps')
    parser.add_argument('--warmup', type=int, default=3, help='untimed steps first')
    parser.add_argument('--threads', type=int, default=None,
                        help='CPU threads in all (default: all cores); split over ranks')
    parser.add_argument('--bucket-mb', type=float, default=25.)
    parser.add_argument('--overlap', action='store_true',
                        help='also time overlap_grad_sync=True')
    parser.add_argument('--out', help='write the results as JSON here')
    return parser.parse_args()


def real_batch(n: int, seed: int = 0) -> dict:
    """``n`` CIFAR-10 images of data/cifar10_mini (random pixels without it)."""
    import random

    import mmcv
    from mmpretrain.structures import DataSample
    files = []
    for label, name in enumerate(CLASSES):
        pattern = osp.join(ROOT, 'data', 'cifar10_mini', 'train', name, '*.jpg')
        files += [(f, label) for f in sorted(glob.glob(pattern))]
    random.Random(seed).shuffle(files)
    inputs, samples = [], []
    gen = torch.Generator().manual_seed(seed)
    for i in range(n):
        if files:
            f, label = files[i % len(files)]
            img = torch.from_numpy(mmcv.imread(f, channel_order='rgb')).permute(2, 0, 1)
        else:
            img = torch.randint(0, 256, (3, 32, 32), generator=gen, dtype=torch.uint8)
            label = i % 10
        inputs.append(img.contiguous())
        samples.append(DataSample().set_gt_label(label))
    return dict(inputs=inputs, data_samples=samples)


def optim_cfg(args, method: str, overlap: bool) -> dict:
    optimizer = dict(type='SGD', lr=0.01, momentum=0.9, weight_decay=1e-4)
    if method == 'E2E':
        return dict(type='OptimWrapper', optimizer=optimizer)
    local = dict(num_modules=args.num_modules, method=dict(type=method), probe_size=(32, 32))
    if args.hilo:
        local['hilo'] = dict(cascade=args.hilo)
    return dict(type='LocalLearningOptimWrapper',
                constructor='LocalLearningOptimWrapperConstructor',
                optimizer=optimizer, bucket_size_mb=args.bucket_mb,
                overlap_grad_sync=overlap, local=local)


def run(args, method: str, overlap: bool, threads: int, batch_size: int) -> dict:
    """Time ``method`` on this process's share of the batch (rank and world
    size from ``mmengine.dist``: 0 and 1 outside a process group)."""
    import mmlocal  # noqa: F401
    from mmengine.dist import barrier, get_rank, get_world_size
    from mmengine.model import MMDistributedDataParallel
    from mmengine.optim import build_optim_wrapper
    from mmengine.registry import init_default_scope
    from mmpretrain.registry import MODELS
    rank, world = get_rank(), get_world_size()
    torch.set_num_threads(threads)
    init_default_scope('mmpretrain')
    torch.manual_seed(0)
    model = MODELS.build(dict(
        type='ImageClassifier',
        data_preprocessor=dict(type='ClsDataPreprocessor', num_classes=10,
                               mean=[125.3, 123.0, 113.9], std=[63.0, 62.1, 66.7]),
        backbone=dict(type='CifarResNet', depth=args.depth),
        neck=dict(type='GlobalAveragePooling'),
        head=dict(type='LinearClsHead', num_classes=10, in_channels=64,
                  loss=dict(type='CrossEntropyLoss'))))
    model.init_weights()
    device = torch.device('cuda', rank) if torch.cuda.is_available() else torch.device('cpu')
    model = model.to(device).train()
    wrapped = model
    if world > 1:
        wrapped = MMDistributedDataParallel(
            module=model, device_ids=[rank] if device.type == 'cuda' else None,
            broadcast_buffers=False)
    wrapper = build_optim_wrapper(wrapped, optim_cfg(args, method, overlap))
    full = real_batch(batch_size * world)
    batch = {k: v[rank * batch_size:(rank + 1) * batch_size] for k, v in full.items()}
    times, comm = [], []
    for i in range(args.warmup + args.iters):
        sync = getattr(wrapper, 'synchronizer', None)
        before = sync.comm_seconds if sync is not None else 0.
        barrier()
        start = time.perf_counter()
        wrapped.train_step(batch, wrapper)
        if device.type == 'cuda':
            torch.cuda.synchronize()
        elapsed = time.perf_counter() - start
        sync = getattr(wrapper, 'synchronizer', None)
        if i >= args.warmup:
            times.append(elapsed)
            comm.append((sync.comm_seconds - before) if sync is not None else float('nan'))
    grad_bytes = sum(p.numel() * p.element_size() for p in wrapped.parameters())
    alone = []
    sync = getattr(wrapper, 'synchronizer', None)
    if sync is not None:  # the all-reduce alone: full gradients, ranks aligned
        for _ in range(args.iters):
            for p in sync.params:
                p.grad = torch.ones_like(p)
            barrier()
            start = time.perf_counter()
            sync.sync()
            alone.append(time.perf_counter() - start)
    return dict(step=statistics.median(times), sync=statistics.median(comm),
                allreduce=statistics.median(alone) if alone else float('nan'),
                grad_mb=grad_bytes / 2**20,
                early=getattr(getattr(wrapper, 'synchronizer', None), 'early_fraction', 0.))


def _worker(rank: int, world: int, port: int, args, method: str, overlap: bool,
            threads: int, out: str) -> None:
    os.environ.update(MASTER_ADDR='127.0.0.1', MASTER_PORT=str(port), RANK=str(rank),
                      WORLD_SIZE=str(world), LOCAL_RANK=str(rank))
    backend = 'nccl' if torch.cuda.is_available() else 'gloo'
    if torch.cuda.is_available():
        torch.cuda.set_device(rank)
    torch.distributed.init_process_group(backend, timeout=datetime.timedelta(seconds=300))
    try:
        result = run(args, method, overlap, threads, args.batch // world)
        if rank == 0:
            torch.save(result, out)
    finally:
        torch.distributed.destroy_process_group()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def main() -> None:
    args = parse_args()
    threads = args.threads or os.cpu_count() or 1
    per_rank = max(threads // args.nproc, 1)
    rows = []
    for method in args.method:
        single = run(args, method, False, threads, args.batch)
        share = run(args, method, False, per_rank, args.batch // args.nproc)
        variants = [False] + ([True] if args.overlap and method != 'E2E' else [])
        for overlap in variants:
            out = osp.join(os.environ.get('TMPDIR', '/tmp'), f'bench_dist_{os.getpid()}.pth')
            mp.spawn(_worker, args=(args.nproc, _free_port(), args, method, overlap,
                                    per_rank, out), nprocs=args.nproc, join=True)
            multi = torch.load(out)
            os.remove(out)
            name = method + (f' K={args.num_modules}' if method != 'E2E' else '')
            name += f' HiLo k={args.hilo}' if args.hilo and method != 'E2E' else ''
            name += ' +overlap' if overlap else ''
            rows.append(dict(
                method=name, global_batch=args.batch, grad_mb=round(multi['grad_mb'], 2),
                step_1proc_ms=round(single['step'] * 1e3, 1),
                step_share_ms=round(share['step'] * 1e3, 1),
                step_nproc_ms=round(multi['step'] * 1e3, 1),
                overhead_ms=round((multi['step'] - share['step']) * 1e3, 1),
                sync_ms=round(multi['sync'] * 1e3, 2),
                allreduce_ms=round(multi['allreduce'] * 1e3, 2),
                early_fraction=round(multi['early'], 2)))
    n = args.nproc
    print(f'| method | G | grads (MB) | 1 proc, G (ms) | 1 proc, G/{n} (ms) | '
          f'{n} procs, G/{n} each (ms) | overhead (ms) | in sync (ms) | all-reduce alone (ms) |')
    print('|' + '---|' * 9)
    for r in rows:
        e2e = r['method'].startswith('E2E')
        sync = 'in backward' if e2e else r['sync_ms']
        alone = 'in backward' if e2e else r['allreduce_ms']
        print(f"| {r['method']} | {r['global_batch']} | {r['grad_mb']} | {r['step_1proc_ms']} | "
              f"{r['step_share_ms']} | {r['step_nproc_ms']} | {r['overhead_ms']} | {sync} | "
              f'{alone} |')
    print(f'threads: {threads} (1 proc), {per_rank} per rank ({args.nproc} procs); '
          f'torch {torch.__version__}, {"CUDA" if torch.cuda.is_available() else "CPU, gloo"}')
    if args.out:
        with open(args.out, 'w') as f:
            json.dump(dict(args=vars(args), rows=rows), f, indent=2)


if __name__ == '__main__':
    main()
