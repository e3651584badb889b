"""Pipelined local learning against one process and data parallelism.

Three runs of the same config on the same global batch G:

* ``one``: one process with S threads, batch G;
* ``ddp``: S processes x 1 thread, batch G/S each (mmengine's
  ``MMDistributedDataParallel``, gradients averaged by the local-learning
  engine);
* ``pipe``: S processes x 1 thread, one pipeline stage each
  (``local.pipeline=dict(stages=S)``, ``MMPipelineParallel``), batch G.

Each run takes ``--warmup`` untimed steps, then ``--iters`` timed ones; the
throughput is G x iters / time of the timed steps (the pipeline is full by
then: its fill and drain, S - 1 ticks each, are not counted). The peak memory
of each process is its peak live tensor memory over the timed steps
(``PeakMemoryTracker``: parameters, gradients, optimizer state, activations),
measured in a separate pass so the profiler does not slow the timed one; the
process's peak resident set (``VmHWM``, the Python heap and ~1 GB of libraries
included) is given too (``ru_maxrss`` would not do: Linux carries it over an
exec, so spawned processes would report their parent's).

Example (the numbers of docs/benchmarks.md; run niced on a shared machine):
    nice -n 5 python tools/analysis/benchmark_pipeline.py \
        configs/resnet110_cifar10_dgl_k55.py --batch 32 --iters 10
    nice -n 5 python tools/analysis/benchmark_pipeline.py \
        configs/vit-b16_cifar10_dgl_k12.py --batch 2 --iters 3 --warmup 1
"""
import argparse
import copy
import datetime
import json
import os
import os.path as osp
import socket
import time

import torch
import torch.multiprocessing as mp


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('config', help='a local-learning config')
    parser.add_argument('--stages', type=int, default=2, help='S')
    parser.add_argument('--batch', type=int, default=32, help='global batch G')
    parser.add_argument('--iters', type=int, default=10, help='timed steps')
    parser.add_argument('--warmup', type=int, default=2, help='untimed steps first')
    parser.add_argument('--runs', nargs='+', default=['one', 'ddp', 'pipe'],
                        choices=['one', 'ddp', 'pipe'])
    parser.add_argument('--no-memory', action='store_true', help='skip the memory pass')
    parser.add_argument('--out', help='write the results as JSON here')
    return parser.parse_args()


def _batch(cfg, n: int, seed: int = 0) -> dict:
    """``n`` images of the config's training input size (uint8, fixed seed)
    with labels: the same data in every run."""
    from mmpretrain.structures import DataSample
    size = _input_size(cfg)
    gen = torch.Generator().manual_seed(seed)
    inputs = [torch.randint(0, 256, (3, *size), generator=gen, dtype=torch.uint8)
              for _ in range(n)]
    samples = [DataSample().set_gt_label(i % 10) for i in range(n)]
    return dict(inputs=inputs, data_samples=samples)


def _input_size(cfg) -> tuple:
    img = cfg.model.backbone.get('img_size', 32)
    return (img, img) if isinstance(img, int) else tuple(img)


def run(cfg_path: str, mode: str, args, batch_size: int) -> dict:
    import mmlocal  # noqa: F401
    from mmengine.config import Config
    from mmengine.dist import barrier, get_world_size
    from mmengine.model import MMDistributedDataParallel
    from mmengine.optim import build_optim_wrapper
    from mmengine.registry import init_default_scope
    from mmpretrain.registry import MODELS

    from mmlocal.engine import MMPipelineParallel
    from mmlocal.utils.memory import PeakMemoryTracker
    cfg = Config.fromfile(cfg_path)
    init_default_scope(cfg.get('default_scope', 'mmpretrain'))
    torch.manual_seed(0)
    model_cfg = copy.deepcopy(cfg.model)
    model_cfg.pop('train_cfg', None)  # batch augmentations (Mixup) draw per process
    model = MODELS.build(model_cfg)
    model.init_weights()
    model.train()
    optim = copy.deepcopy(cfg.optim_wrapper)
    optim.pop('clip_grad', None)  # global-norm clipping: see docs/distributed.md
    local = optim['local']
    local.setdefault('probe_size', _input_size(cfg))
    wrapped = model
    if mode == 'ddp':
        wrapped = MMDistributedDataParallel(module=model, device_ids=None,
                                            broadcast_buffers=False)
    elif mode == 'pipe':
        wrapped = MMPipelineParallel(model)
        local['pipeline'] = dict(stages=args.stages)
    wrapper = build_optim_wrapper(wrapped, optim)
    batch = _batch(cfg, batch_size)
    if mode == 'ddp':
        from mmengine.dist import get_rank
        full = _batch(cfg, batch_size * get_world_size())
        r = get_rank()
        batch = {k: v[r * batch_size:(r + 1) * batch_size] for k, v in full.items()}
    for _ in range(args.warmup):
        wrapped.train_step(batch, wrapper)
    barrier()
    start = time.perf_counter()
    for _ in range(args.iters):
        wrapped.train_step(batch, wrapper)
    barrier()
    elapsed = time.perf_counter() - start
    peak = None
    if not args.no_memory:
        with PeakMemoryTracker('cpu', baseline=(model, wrapper)) as tracker:
            wrapped.train_step(batch, wrapper)
            tracker.reset_peak()
            for _ in range(2):
                wrapped.train_step(batch, wrapper)
        peak = tracker.stats.peak_bytes
    if mode == 'pipe':
        wrapper.pipeline.flush(wrapper)
    return dict(seconds=elapsed, peak_mb=None if peak is None else peak / 2**20,
                rss_mb=_peak_rss_mb())


def _peak_rss_mb() -> float:
    with open('/proc/self/status') as f:
        for line in f:
            if line.startswith('VmHWM:'):
                return int(line.split()[1]) / 1024
    return float('nan')


def _worker(rank: int, world: int, port: int, cfg_path: str, mode: str, args,
            out: str) -> None:
    os.environ.update(MASTER_ADDR='127.0.0.1', MASTER_PORT=str(port), RANK=str(rank),
                      WORLD_SIZE=str(world), LOCAL_RANK=str(rank))
    torch.set_num_threads(1)
    torch.distributed.init_process_group('gloo', timeout=datetime.timedelta(seconds=1800))
    try:
        batch = args.batch // world if mode == 'ddp' else args.batch
        torch.save(run(cfg_path, mode, args, batch), f'{out}.{rank}')
        torch.distributed.barrier()  # no rank leaves while another still communicates
    finally:
        torch.distributed.destroy_process_group()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def main() -> None:
    args = parse_args()
    s = args.stages
    rows = {}
    for mode in args.runs:
        if mode == 'one':
            torch.set_num_threads(s)
            procs = [run(args.config, mode, args, args.batch)]
        else:
            out = osp.join(os.environ.get('TMPDIR', '/tmp'), f'bench_pipe_{os.getpid()}')
            mp.spawn(_worker, args=(s, _free_port(), args.config, mode, args, out),
                     nprocs=s, join=True)
            procs = [torch.load(f'{out}.{r}') for r in range(s)]
            for r in range(s):
                os.remove(f'{out}.{r}')
        seconds = max(p['seconds'] for p in procs)
        rows[mode] = dict(images_per_s=args.batch * args.iters / seconds,
                          peak_mb=[p['peak_mb'] for p in procs],
                          rss_mb=[p['rss_mb'] for p in procs])
    print(f'{osp.basename(args.config)}: S={s}, global batch {args.batch}, '
          f'{args.iters} timed steps after {args.warmup}')
    print(f'{"run":<28} {"images/s":>9} {"peak MB per process":>24} {"peak RSS MB":>16}')
    names = dict(one=f'one process x {s} threads', ddp=f'DDP {s} proc x 1 thread',
                 pipe=f'pipeline {s} proc x 1 thread')
    for mode, row in rows.items():
        peaks = ' / '.join('-' if p is None else f'{p:.0f}' for p in row['peak_mb'])
        rss = ' / '.join(f'{p:.0f}' for p in row['rss_mb'])
        print(f'{names[mode]:<28} {row["images_per_s"]:>9.2f} {peaks:>24} {rss:>16}')
    if 'pipe' in rows:
        pipe = rows['pipe']
        for ref in ('one', 'ddp'):
            if ref in rows:
                ratio = pipe['images_per_s'] / rows[ref]['images_per_s']
                print(f'pipeline / {ref}: throughput x{ratio:.2f}', end='')
                if pipe['peak_mb'][0] is not None and rows[ref]['peak_mb'][0] is not None:
                    print(f', max peak per process x'
                          f'{max(pipe["peak_mb"]) / max(rows[ref]["peak_mb"]):.2f}', end='')
                print()
    if args.out:
        with open(args.out, 'w') as f:
            json.dump(dict(config=args.config, stages=s, batch=args.batch, iters=args.iters,
                           warmup=args.warmup, runs=rows), f, indent=2)


if __name__ == '__main__':
    main()
