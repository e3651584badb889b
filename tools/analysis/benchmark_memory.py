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
import copy
import gc
import json
import os
import os.path as osp
import platform
import statistics
import time
from typing import Any, Dict, List, Optional, Sequence, Tuple

import mmlocal  # noqa: F401  (compat patches, registrations) before mm*
import torch
from mmengine.config import Config, DictAction
from mmengine.model import revert_sync_batchnorm
from mmengine.optim import build_optim_wrapper
from mmengine.registry import MODELS, init_default_scope
from mmengine.runner import Runner
from torch.utils.flop_counter import FlopCounterMode

from mmlocal.utils.memory import MB, PeakMemoryTracker, tensor_bytes

CROP_KEYS = ('crop_size', 'scale', 'size')


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


# ---------------------------------------------------------------- machine
def machine_info(device: torch.device) -> Dict[str, Any]:
    """What the numbers were measured on."""
    cpu = platform.processor() or platform.machine()
    try:
        with open('/proc/cpuinfo') as f:
            for line in f:
                if line.startswith('model name'):
                    cpu = line.split(':', 1)[1].strip()
                    break
    except OSError:
        pass
    info = dict(
        cpu=cpu,
        cpu_count=os.cpu_count(),
        torch_threads=torch.get_num_threads(),
        torch=torch.__version__,
        python=platform.python_version(),
        device=str(device))
    if device.type == 'cuda':
        info['gpu'] = torch.cuda.get_device_name(device)
        info['cuda'] = torch.version.cuda
    return info


# ------------------------------------------------------------ model, data
def load_config(path: str, cfg_options: Optional[dict]) -> Config:
    cfg = Config.fromfile(path)  # imports custom_imports
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    return cfg


def build_model_and_optim(cfg: Config, device: torch.device):
    """The model in train mode and its optim wrapper, as the Runner builds
    them for one process (SyncBN reverted; no checkpoint loading)."""
    init_default_scope(cfg.get('default_scope', 'mmengine'))
    model_cfg = copy.deepcopy(cfg.model)
    # as the Runner: a top-level data_preprocessor (normalisation, Mixup) is the model's
    if cfg.get('data_preprocessor') is not None:
        model_cfg.setdefault('data_preprocessor', copy.deepcopy(cfg.data_preprocessor))
    model = MODELS.build(model_cfg)
    model = revert_sync_batchnorm(model).to(device)
    model.train()
    optim_wrapper = build_optim_wrapper(model, copy.deepcopy(cfg.optim_wrapper))
    return model, optim_wrapper


def real_batch(cfg: Config, batch_size: int, seed: int) -> dict:
    """One batch from the config's training dataloader."""
    init_default_scope(cfg.get('default_scope', 'mmengine'))
    dl_cfg = copy.deepcopy(cfg.train_dataloader)
    dl_cfg.update(batch_size=batch_size, num_workers=0, persistent_workers=False)
    dl_cfg.pop('prefetch_factor', None)  # only valid with workers
    try:
        loader = Runner.build_dataloader(dl_cfg, seed=seed)
        return next(iter(loader))
    except (FileNotFoundError, OSError) as e:
        raise RuntimeError(
            f'Cannot read the training data of this config ({e}). Point it at '
            'the dataset with --cfg-options train_dataloader.dataset.data_root='
            'PATH, or benchmark on random inputs with --synthetic '
            '--input-size H W.') from e


def _find_crop_size(cfg: Config) -> Optional[Tuple[int, int]]:
    """Input size the training pipeline produces, when it says so."""

    def as_hw(v):
        if isinstance(v, int):
            return (v, v)
        if isinstance(v, (list, tuple)) and len(v) == 2 and all(
                isinstance(x, int) for x in v):
            return tuple(v)
        return None

    if as_hw(cfg.get('crop_size')):  # mmseg configs: (h, w)
        return as_hw(cfg.get('crop_size'))
    pipeline = cfg.get('train_dataloader', {}).get('dataset', {}).get(
        'pipeline', [])
    for t in reversed(list(pipeline)):
        if 'Crop' in str(t.get('type', '')):
            for key in CROP_KEYS:
                hw = as_hw(t.get(key))
                if hw:
                    return hw
    return None


def fit_preprocessor_size(cfg: Config, input_size: Sequence[int]) -> None:
    """Make a padding data preprocessor (mmseg ``size=crop_size``) keep the
    synthetic ``--input-size`` instead of padding it to the config's crop."""
    pre = cfg.model.get('data_preprocessor')
    if isinstance(pre, dict) and pre.get('size') is not None:
        pre['size'] = tuple(input_size)


def synthetic_batch(cfg: Config, batch_size: int,
                    input_size: Optional[Sequence[int]], seed: int) -> dict:
    """Random uint8 images with random targets, shaped like packed samples."""
    scope = cfg.get('default_scope')
    hw = tuple(input_size) if input_size else _find_crop_size(cfg)
    if hw is None:
        raise ValueError('Cannot tell the input size from the config: pass '
                         '--input-size H W.')
    h, w = hw
    g = torch.Generator().manual_seed(seed)
    inputs = [
        torch.randint(0, 256, (3, h, w), dtype=torch.uint8, generator=g)
        for _ in range(batch_size)
    ]
    meta = dict(img_shape=(h, w), ori_shape=(h, w), pad_shape=(h, w),
                scale_factor=(1.0, 1.0), flip=False, flip_direction=None)
    if scope == 'mmpretrain':
        from mmpretrain.structures import DataSample
        head = cfg.model.get('head') or {}
        num_classes = head.get('num_classes', 10)
        samples = [
            DataSample(metainfo=meta).set_gt_label(
                int(torch.randint(0, num_classes, (1, ), generator=g)))
            for _ in range(batch_size)
        ]
    elif scope == 'mmseg':
        from mmengine.structures import PixelData
        from mmseg.structures import SegDataSample
        num_classes = cfg.model.get('decode_head', {}).get('num_classes', 19)
        samples = []
        for _ in range(batch_size):
            s = SegDataSample(metainfo=dict(meta, reduce_zero_label=False))
            s.gt_sem_seg = PixelData(data=torch.randint(
                0, num_classes, (1, h, w), dtype=torch.int64, generator=g))
            samples.append(s)
    else:
        raise ValueError(f'--synthetic supports mmpretrain (classification) '
                         f'and mmseg (segmentation) configs, not default_scope '
                         f'{scope!r}: benchmark it on its dataset instead.')
    return dict(inputs=inputs, data_samples=samples)


# ------------------------------------------------------------ measurement
def _sync(device: torch.device) -> None:
    if device.type == 'cuda':
        torch.cuda.synchronize(device)


def count_flops(model: torch.nn.Module, optim_wrapper, batch: dict) -> int:
    """FLOPs of one training step: what any device has to compute, however
    fast it does so (local heads, reconstructions and every backward pass
    included; input gradients that autograd skips are not counted)."""
    with FlopCounterMode(display=False) as counter:
        model.train_step(batch, optim_wrapper)
    return counter.get_total_flops()


def measure(cfg: Config, batch: dict, args: argparse.Namespace,
            device: torch.device) -> Dict[str, Any]:
    """Build a fresh model, warm up, time ``iters`` steps, then measure the
    memory of one more step (the second of two tracked ones)."""
    torch.manual_seed(args.seed)
    model, optim_wrapper = build_model_and_optim(cfg, device)
    params = tensor_bytes(model, device)  # parameters + buffers (+ heads)
    for _ in range(args.warmup):
        model.train_step(batch, optim_wrapper)
    times = []
    for _ in range(args.iters):
        _sync(device)
        t0 = time.perf_counter()
        model.train_step(batch, optim_wrapper)
        _sync(device)
        times.append(time.perf_counter() - t0)
    flops = count_flops(model, optim_wrapper, batch)
    # Memory on separate steps (the CPU tracker slows ops down). The window
    # is the second tracked step: what the first one leaves for the next
    # step to free (e.g. last step's targets) is then known to the tracker.
    with PeakMemoryTracker(device, baseline=(model, optim_wrapper)) as tracker:
        model.train_step(batch, optim_wrapper)
        tracker.reset_peak()
        _sync(device)
        t0 = time.perf_counter()
        model.train_step(batch, optim_wrapper)
        _sync(device)
        tracked_time = time.perf_counter() - t0
    stats = tracker.stats
    del model, optim_wrapper
    gc.collect()
    if device.type == 'cuda':
        torch.cuda.empty_cache()
    return dict(
        params_mb=params / MB,
        baseline_mb=stats.baseline_bytes / MB,
        peak_increase_mb=stats.peak_increase_bytes / MB,
        peak_mb=stats.peak_bytes / MB,
        step_times_s=times,
        step_time_s=statistics.mean(times),
        gflops=flops / 1e9,
        tracked_step_time_s=tracked_time)


def unique_names(paths: Sequence[str]) -> List[str]:
    names = []
    for p in paths:
        name = osp.splitext(osp.basename(p))[0]
        base, i = name, 2
        while name in names:
            name, i = f'{base}#{i}', i + 1
        names.append(name)
    return names


def pick_reference(names: Sequence[str], key: str) -> int:
    for i, n in enumerate(names):
        if key in n:
            return i
    return 0


def summarize(runs: Dict[str, List[dict]]) -> Dict[str, dict]:
    """Median over repeats of each config's measurements."""
    out = {}
    for name, rs in runs.items():
        out[name] = dict(
            params_mb=rs[0]['params_mb'],
            baseline_mb=statistics.median(r['baseline_mb'] for r in rs),
            peak_increase_mb=statistics.median(r['peak_increase_mb'] for r in rs),
            peak_mb=statistics.median(r['peak_mb'] for r in rs),
            peak_mb_range=[min(r['peak_mb'] for r in rs),
                           max(r['peak_mb'] for r in rs)],
            step_time_s=statistics.median(r['step_time_s'] for r in rs),
            gflops=rs[0]['gflops'],  # the same work in every repeat
            step_time_s_range=[min(r['step_time_s'] for r in rs),
                               max(r['step_time_s'] for r in rs)],
            tracked_step_time_s=statistics.median(
                r['tracked_step_time_s'] for r in rs),
            repeats=rs)
    return out


def markdown(results: dict) -> str:
    rows = results['results']
    ref = results['reference']
    m, s = results['machine'], results['settings']
    hw = m.get('gpu') or f"{m['cpu']} ({m['torch_threads']} torch threads)"
    lines = [
        f"Machine: {hw}, torch {m['torch']}, device {m['device']}.  ",
        f"Batch size {s['batch_size']}, inputs: {s['inputs']}; "
        f"{s['warmup']} warm-up + {s['iters']} timed steps per config, "
        f"{s['repeat']} interleaved repeat(s), medians.  ",
        'Peak memory = parameters + buffers + optimizer state + peak increase '
        'of live tensor memory during one `train_step`. GFLOPs: one step\'s '
        'convolutions and matrix products, forward and backward '
        '(`torch.utils.flop_counter`).',
        '',
        f'| config | peak memory (MB) | vs {ref} | step time (s) | vs {ref} '
        f'| GFLOPs/step | vs {ref} |',
        '|---|---:|---:|---:|---:|---:|---:|',
    ]
    r0 = rows[ref]

    def ratio(r: dict, key: str) -> float:
        return r[key] / r0[key] if r0[key] else float('nan')

    for name, r in rows.items():
        lines.append(f"| {name} | {r['peak_mb']:.1f} | {ratio(r, 'peak_mb'):.2f} | "
                     f"{r['step_time_s']:.3f} | {ratio(r, 'step_time_s'):.2f} | "
                     f"{r['gflops']:.2f} | {ratio(r, 'gflops'):.3f} |")
    return '\n'.join(lines) + '\n'


def main(argv: Optional[Sequence[str]] = None) -> dict:
    args = parse_args(argv)
    device = torch.device(args.device)
    if device.type == 'cuda' and not torch.cuda.is_available():
        raise SystemExit('--device cuda: no GPU visible to this torch build; '
                         'use --device cpu.')
    threads = torch.get_num_threads()
    if args.threads:
        torch.set_num_threads(args.threads)
    try:
        return run(args, device)
    finally:
        torch.set_num_threads(threads)  # main() is also called in-process


def run(args: argparse.Namespace, device: torch.device) -> dict:
    """Measure every config ``args.repeat`` times and write the reports."""
    names = unique_names(args.configs)
    cfgs = [load_config(p, args.cfg_options) for p in args.configs]
    if args.synthetic and args.input_size:
        for cfg in cfgs:
            fit_preprocessor_size(cfg, args.input_size)
    batches = [
        synthetic_batch(c, args.batch_size, args.input_size, args.seed)
        if args.synthetic else real_batch(c, args.batch_size, args.seed)
        for c in cfgs
    ]
    machine = machine_info(device)
    print('machine: ' + ', '.join(f'{k}={v}' for k, v in machine.items()),
          flush=True)
    runs: Dict[str, List[dict]] = {n: [] for n in names}
    for rep in range(args.repeat):
        for name, cfg, batch in zip(names, cfgs, batches):
            r = measure(cfg, batch, args, device)
            runs[name].append(r)
            print(f'[{rep + 1}/{args.repeat}] {name}: peak {r["peak_mb"]:.1f} MB '
                  f'(params+state {r["baseline_mb"]:.1f} MB + step '
                  f'{r["peak_increase_mb"]:.1f} MB), step '
                  f'{r["step_time_s"]:.3f} s, {r["gflops"]:.2f} GFLOPs',
                  flush=True)
    reference = names[pick_reference(names, args.reference)]
    hw = tuple(batches[0]['inputs'][0].shape[-2:])
    inputs = f'synthetic {hw}' if args.synthetic else f'dataset, first {hw}'
    results = dict(
        machine=machine,
        settings=dict(batch_size=args.batch_size, iters=args.iters,
                      warmup=args.warmup, repeat=args.repeat, seed=args.seed,
                      inputs=inputs, cfg_options=args.cfg_options),
        configs=dict(zip(names, args.configs)),
        reference=reference,
        results=summarize(runs))
    table = markdown(results)
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
