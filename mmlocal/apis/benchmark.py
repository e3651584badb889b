"""Peak memory, FLOPs and time of training steps, measured on real models.

Peak memory = bytes of parameters, buffers and optimizer state at the start
of a step (gradients are freed by ``zero_grad``) + the peak increase of live
tensor memory during ``model.train_step`` (``PeakMemoryTracker``: the CUDA
allocator's counters, or on CPU every c10 allocation and free).

FLOPs are counted by torch's ``FlopCounterMode`` (convolutions and matrix
products, forward and backward): a cost that, unlike the wall-clock time,
does not depend on the machine's load.
"""
import gc
import os
import os.path as osp
import platform
import statistics
import time
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple, Union

import torch
from mmengine.config import Config
from torch.utils.flop_counter import FlopCounterMode

from mmlocal.utils.memory import MB, PeakMemoryTracker, tensor_bytes
from .builder import build_model_and_optim_wrapper, load_config
from .data import fit_preprocessor_size, real_batch, synthetic_batch


def machine_info(device: Union[str, torch.device]) -> Dict[str, Any]:
    """What the numbers were measured on."""
    device = torch.device(device)
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


def measure_step(cfg: Config, batch: dict, device: Union[str, torch.device] = 'cpu',
                 warmup: int = 1, iters: int = 3, seed: int = 0) -> Dict[str, Any]:
    """Build a fresh model, run ``warmup`` steps, time ``iters`` steps, count
    one step's FLOPs, then measure the memory of one more step (the second of
    two tracked ones: what the first leaves for the next step to free, e.g.
    last step's targets, is then known to the tracker).

    Returns MB figures (``params_mb``, ``baseline_mb``, ``peak_increase_mb``,
    ``peak_mb``), times in seconds and ``gflops``.
    """
    device = torch.device(device)
    torch.manual_seed(seed)
    model, optim_wrapper = build_model_and_optim_wrapper(cfg, device)
    # parameters + buffers, local heads included wherever the learner keeps them
    params = tensor_bytes((model, getattr(optim_wrapper, 'learner', None)), device)
    for _ in range(warmup):
        model.train_step(batch, optim_wrapper)
    times = []
    for _ in range(iters):
        _sync(device)
        t0 = time.perf_counter()
        model.train_step(batch, optim_wrapper)
        _sync(device)
        times.append(time.perf_counter() - t0)
    flops = count_flops(model, optim_wrapper, batch)
    # memory on separate steps: the CPU tracker slows ops down
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
    """Config stems, numbered where two configs share one."""
    names = []
    for p in paths:
        name = osp.splitext(osp.basename(p))[0]
        base, i = name, 2
        while name in names:
            name, i = f'{base}#{i}', i + 1
        names.append(name)
    return names


def pick_reference(names: Sequence[str], key: str) -> int:
    """Index of the first name containing ``key``; 0 when none does."""
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


def markdown_table(results: dict) -> str:
    """The markdown report of ``benchmark_configs``' results."""
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


def benchmark_configs(paths: Sequence[str],
                      batch_size: int,
                      device: Union[str, torch.device] = 'cpu',
                      iters: int = 3,
                      warmup: int = 1,
                      repeat: int = 1,
                      synthetic: bool = False,
                      input_size: Optional[Sequence[int]] = None,
                      reference: str = '_e2e',
                      seed: int = 0,
                      cfg_options: Optional[dict] = None,
                      log: Optional[Callable[[str], None]] = print) -> dict:
    """Measure configs side by side, interleaved ``repeat`` times, in this
    process; medians per config.

    Each config is built with its own registries and trained by its own
    ``optim_wrapper`` on one batch of its own training pipeline (random
    inputs with ``synthetic``). Ratios are to the first config whose name
    contains ``reference`` (else the first). Returns ``machine``,
    ``settings``, ``configs``, ``reference`` and ``results`` (see
    ``summarize``); ``markdown_table`` renders it.
    """
    device = torch.device(device)
    log = log or (lambda _: None)
    names = unique_names(paths)
    cfgs = [load_config(p, cfg_options) for p in paths]
    if synthetic and input_size:
        for cfg in cfgs:
            fit_preprocessor_size(cfg, input_size)
    batches = [
        synthetic_batch(c, batch_size, input_size, seed)
        if synthetic else real_batch(c, batch_size, seed) for c in cfgs
    ]
    machine = machine_info(device)
    log('machine: ' + ', '.join(f'{k}={v}' for k, v in machine.items()))
    runs: Dict[str, List[dict]] = {n: [] for n in names}
    for rep in range(repeat):
        for name, cfg, batch in zip(names, cfgs, batches):
            r = measure_step(cfg, batch, device, warmup=warmup, iters=iters, seed=seed)
            runs[name].append(r)
            log(f'[{rep + 1}/{repeat}] {name}: peak {r["peak_mb"]:.1f} MB '
                f'(params+state {r["baseline_mb"]:.1f} MB + step '
                f'{r["peak_increase_mb"]:.1f} MB), step '
                f'{r["step_time_s"]:.3f} s, {r["gflops"]:.2f} GFLOPs')
    hw = tuple(batches[0]['inputs'][0].shape[-2:])
    inputs = f'synthetic {hw}' if synthetic else f'dataset, first {hw}'
    return dict(
        machine=machine,
        settings=dict(batch_size=batch_size, iters=iters, warmup=warmup,
                      repeat=repeat, seed=seed, inputs=inputs,
                      cfg_options=cfg_options),
        configs=dict(zip(names, paths)),
        reference=names[pick_reference(names, reference)],
        results=summarize(runs))


def head_peak_memory(method: str, arch: str, channels: int, size: Sequence[int],
                     image: Sequence[int], batch: int, patches: int,
                     seed: int = 0) -> Tuple[float, float]:
    """Peak increase (MB) of one local head's forward + backward to its input
    feature, with ``patches`` x ``patches`` PFF (1: unpatched), on CPU; and
    the size (MB) of the feature's gradient, which the module's output
    gradient needs with or without PFF (and in E2E) and is part of the peak.

    The head is the plan's (``build_plan``, ``build_head``: what the learner
    builds for a module of ``method`` with ``pff=dict(patches=n)``) and runs
    as the step runs it. Its parameters, their gradients and the feature
    exist before the window, so the figure is the head's activations and
    gradients.
    """
    from mmlocal.local.head_runner import run_planned_head
    from mmlocal.local.plan import build_head, build_plan
    from mmlocal.structures import FeatureInfo, LocalTargets, TaskInfo
    torch.manual_seed(seed)
    cfg = dict(type=method)
    if method != 'PredSim':
        cfg['classifier'] = dict(type='ConvAuxClassifier', arch=arch)
    plan = build_plan(['backbone.layer1.0'],
                      dict(method=cfg, pff=dict(patches=patches) if patches > 1 else None))
    hp = plan.heads[0]
    head = build_head(hp, FeatureInfo(channels, tuple(size)), TaskInfo('classification', 10))
    feat = torch.randn(batch, channels, *size).requires_grad_()
    targets = LocalTargets(inputs=torch.rand(batch, 3, *image) * 255,
                           labels=torch.randint(0, 10, (batch, )))
    targets.image01  # the target image exists before the window, like the batch

    def step():
        run_planned_head(hp, head, feat, targets, tuple(image), lambda l: l.backward())

    step()  # gradients of the head's parameters exist from now on
    feat.grad = None
    with PeakMemoryTracker('cpu', baseline=0) as tracker:
        step()
    feat_grad = feat.numel() * feat.element_size()
    return tracker.stats.peak_increase_bytes / MB, feat_grad / MB
