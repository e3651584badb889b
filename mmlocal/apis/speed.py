"""What a training step costs: time, FLOPs, aten ops and host syncs, side by side.

Wall-clock times on a shared machine drift with its load, so configs are
timed *interleaved*: round after round, one iteration of each config in
turn, and each config's time is compared with the reference's in the same
round (the median of those per-round ratios is reported). Counts do not
drift: aten ops per step and host syncs per step (``aten._local_scalar_dense``,
what ``.item()``, ``float(t)``, ``bool(t)`` and ``if t:`` dispatch to: on
CUDA the CPU waits for the GPU there) are counted with a
``TorchDispatchMode`` inside one ``train_step``; FLOPs with
``torch.utils.flop_counter``.

An iteration is what the Runner runs: ``train_step``, then the reads of
mmengine's ``RuntimeInfoHook`` (every logged value) and of ``LocalLossHook``
(the local losses, one host sync for all).
"""
import ast
import collections
import os.path as osp
import statistics
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, Optional, Sequence, Tuple, Union

import torch
from mmengine.logging import MessageHub
from torch.utils._python_dispatch import TorchDispatchMode

from .benchmark import count_flops, machine_info, pick_reference, unique_names
from .builder import build_model_and_optim_wrapper, load_config
from .data import fit_preprocessor_size, real_batch, synthetic_batch

#: what ``.item()``, ``float(t)``, ``bool(t)`` and ``if t:`` dispatch to
HOST_SYNC = torch.ops.aten._local_scalar_dense.default


class OpCounter(TorchDispatchMode):
    """Counts aten ops and host syncs dispatched while active.

    ``where=True`` also records the Python stack of every host sync
    (``sync_sites``), to find where they come from.
    """

    def __init__(self, where: bool = False) -> None:
        super().__init__()
        self.ops = 0
        self.syncs = 0
        self.by_op: Dict[str, int] = collections.Counter()
        self.where = where
        self.sync_sites: Dict[str, int] = collections.Counter()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        self.ops += 1
        self.by_op[str(func)] += 1
        if func is HOST_SYNC:
            self.syncs += 1
            if self.where:
                import traceback
                frames = [f for f in traceback.extract_stack()[:-1]
                          if '/torch/' not in f.filename][-3:]
                self.sync_sites[' < '.join(f'{f.filename}:{f.lineno}'
                                           for f in reversed(frames))] += 1
        return func(*args, **(kwargs or {}))


def runner_mode(optim_wrapper) -> None:
    """Read local losses after the iteration, as under the Runner with
    ``LocalLossHook`` (its ``before_train``)."""
    if hasattr(optim_wrapper, 'defer_local_losses'):
        optim_wrapper.defer_local_losses(True)


def run_iteration(model: torch.nn.Module, optim_wrapper, batch: dict) -> Dict[str, float]:
    """One iteration as the Runner runs it: ``train_step``, then the host
    reads of ``RuntimeInfoHook`` (log values) and ``LocalLossHook`` (local
    losses, checked). Returns every logged value."""
    outputs = model.train_step(batch, optim_wrapper)
    hub = MessageHub.get_current_instance()
    read = {}
    for key, value in outputs.items():
        hub.update_scalar(f'train/{key}', value)  # .item() per key, as mmengine
        read[key] = hub.get_scalar(f'train/{key}').current()
    pop = getattr(optim_wrapper, 'pop_local_losses', None)
    losses = pop() if pop is not None else None
    if losses:
        read.update(losses.log(hub))
    return read


@dataclass
class StepCount:
    """aten ops and host syncs dispatched by one ``train_step``."""
    ops: int
    syncs: int
    by_op: Dict[str, int] = field(default_factory=dict)
    sync_sites: Dict[str, int] = field(default_factory=dict)


def count_step(model: torch.nn.Module, optim_wrapper, batch: dict,
               where: bool = False) -> StepCount:
    """Ops and host syncs inside one ``train_step`` (the reads after it, by
    the hooks, are not part of the step: E2E's happen there too)."""
    counter = OpCounter(where=where)
    with counter:
        outputs = model.train_step(batch, optim_wrapper)
    hub = MessageHub.get_current_instance()
    for key, value in outputs.items():
        hub.update_scalar(f'train/{key}', value)
    pop = getattr(optim_wrapper, 'pop_local_losses', None)
    losses = pop() if pop is not None else None
    if losses:
        losses.log(hub)
    return StepCount(counter.ops, counter.syncs, dict(counter.by_op),
                     dict(counter.sync_sites))


def parse_spec(spec: str) -> Tuple[str, Dict[str, Any], str]:
    """``CONFIG[,key=value...]``: a config with its own overrides (values are
    Python literals, else strings), e.g.
    ``configs/x.py,optim_wrapper.local.pff.mode=batched``; returns the path,
    the overrides and a row name (the config's stem and the overrides)."""
    path, *items = spec.split(',')
    options = {}
    for item in items:
        key, sep, value = item.partition('=')
        if not sep or not key:
            raise ValueError(f'{spec!r}: overrides are key=value, got {item!r}')
        try:
            options[key] = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            options[key] = value
    name = osp.splitext(osp.basename(path))[0]
    if items:
        name += ' [' + ', '.join(f'{k.rsplit(".", 1)[-1]}={v}' for k, v in options.items()) + ']'
    return path, options, name


Spec = Union[str, Tuple[str, Dict[str, Any], str]]


def benchmark_speed(specs: Sequence[Spec],
                    batch_size: int,
                    rounds: int = 5,
                    warmup: int = 1,
                    device: Union[str, torch.device] = 'cpu',
                    synthetic: bool = False,
                    input_size: Optional[Sequence[int]] = None,
                    reference: str = '_e2e',
                    seed: int = 0,
                    cfg_options: Optional[dict] = None,
                    details: bool = False,
                    isolate: bool = False,
                    log: Optional[Callable[[str], None]] = print) -> Dict[str, Any]:
    """Step time, FLOPs, aten ops and host syncs per step of configs, in one
    process, every config built once and timed interleaved ``rounds`` times.

    Args:
        specs: ``parse_spec`` strings, or (path, overrides, row name).
        details: also each config's step memory (``step_memory``: the CUDA
            caching allocator's peaks) and a profile of one iteration
            (``profile_step``).
        isolate: a config that fails (e.g. out of memory) gets an ``error``
            row and the others go on (default: the error propagates).

    Returns ``machine``, ``settings``, ``configs``, ``reference`` and
    ``results`` (per config: ``step_time_s`` median, ``time_ratio`` median of
    the per-round ratios to the reference, ``gflops``, ``ops``, ``syncs``);
    ``speed_table`` renders it.
    """
    device = torch.device(device)
    log = log or (lambda _: None)
    parsed = [parse_spec(s) if isinstance(s, str) else tuple(s) for s in specs]
    names = unique_names([name + '.py' for _, _, name in parsed])
    machine = machine_info(device)
    log('machine: ' + ', '.join(f'{k}={v}' for k, v in machine.items()))
    runs, results = [], {}
    for name, (path, options, _) in zip(names, parsed):
        try:
            runs.append(_prepare(name, path, options, batch_size, warmup, device, synthetic,
                                 input_size, seed, cfg_options, details))
        except Exception as e:  # noqa: BLE001 - recorded, the others go on
            if not isolate:
                raise
            results[name] = dict(error=f'{type(e).__name__}: {e}'.splitlines()[0][:300])
            _free(device)
            log(f'{name}: {results[name]["error"]}')
            continue
        log(f"{name}: {runs[-1]['count'].ops} aten ops, {runs[-1]['count'].syncs} host "
            f"syncs, {runs[-1]['flops'] / 1e9:.2f} GFLOPs per step")
    ok = [r['name'] for r in runs]
    ref_name = ok[pick_reference(ok, reference)] if ok else None
    for r in range(rounds):
        for run in runs:
            _sync(device)
            t0 = time.perf_counter()
            run_iteration(run['model'], run['wrapper'], run['batch'])
            _sync(device)
            run['times'].append(time.perf_counter() - t0)
        log(f'[round {r + 1}/{rounds}] ' + ', '.join(
            f"{run['name']} {run['times'][-1]:.3f} s" for run in runs))
    ref_times = next((run['times'] for run in runs if run['name'] == ref_name), None)
    for run in runs:
        ratios = [t / t0 for t, t0 in zip(run['times'], ref_times)] if rounds else [float('nan')]
        results[run['name']] = dict(
            step_time_s=statistics.median(run['times']) if rounds else float('nan'),
            step_times_s=run['times'],
            time_ratio=statistics.median(ratios),
            time_ratio_range=[min(ratios), max(ratios)],
            gflops=run['flops'] / 1e9,
            ops=run['count'].ops,
            syncs=run['count'].syncs,
            **run['details'])
    hw = tuple(runs[0]['batch']['inputs'][0].shape[-2:]) if runs else None
    return dict(
        machine=machine,
        settings=dict(batch_size=batch_size, rounds=rounds, warmup=warmup, seed=seed,
                      inputs=f'synthetic {hw}' if synthetic else f'dataset, first {hw}',
                      cfg_options=cfg_options),
        configs={n: (s if isinstance(s, str) else list(s[:2])) for n, s in zip(names, specs)},
        reference=ref_name,
        results={n: results[n] for n in names if n in results})


def _prepare(name, path, options, batch_size, warmup, device, synthetic, input_size, seed,
             cfg_options, details) -> Dict[str, Any]:
    """A config built, warmed up, counted (and with ``details`` measured)."""
    cfg = load_config(path, cfg_options)
    cfg.merge_from_dict(options)
    if synthetic and input_size:
        fit_preprocessor_size(cfg, input_size)
    batch = synthetic_batch(cfg, batch_size, input_size, seed) if synthetic \
        else real_batch(cfg, batch_size, seed)
    torch.manual_seed(seed)
    model, wrapper = build_model_and_optim_wrapper(cfg, device)
    runner_mode(wrapper)
    for _ in range(warmup):
        run_iteration(model, wrapper, batch)
    count = count_step(model, wrapper, batch)
    flops = count_flops(model, wrapper, batch)
    extra = {}
    if details:
        extra['memory'] = step_memory(model, wrapper, batch, device)
        extra['profile'] = profile_step(model, wrapper, batch, device)
    run_iteration(model, wrapper, batch)  # the counting modes leave caches cold
    return dict(name=name, model=model, wrapper=wrapper, batch=batch, count=count,
                flops=flops, times=[], details=extra)


def step_memory(model: torch.nn.Module, optim_wrapper, batch: dict,
                device: torch.device) -> Dict[str, float]:
    """The CUDA caching allocator during one iteration (MB): ``peak_mb``
    (allocated), ``baseline_mb`` (allocated before: weights, optimizer state),
    ``reserved_peak_mb`` (cached by the allocator: what ``nvidia-smi`` sees),
    ``inactive_split_peak_mb`` (fragmentation: cached blocks split and idle),
    ``alloc_retries`` (cache flushes forced by a failed allocation). Empty on
    the CPU."""
    if device.type != 'cuda':
        return {}
    torch.cuda.synchronize(device)
    torch.cuda.empty_cache()  # other configs' cached blocks are not this step's
    torch.cuda.reset_peak_memory_stats(device)
    base = torch.cuda.memory_allocated(device)
    run_iteration(model, optim_wrapper, batch)
    torch.cuda.synchronize(device)
    st = torch.cuda.memory_stats(device)
    mb = 2. ** 20
    return dict(peak_mb=st['allocated_bytes.all.peak'] / mb, baseline_mb=base / mb,
                reserved_peak_mb=st['reserved_bytes.all.peak'] / mb,
                inactive_split_peak_mb=st['inactive_split_bytes.all.peak'] / mb,
                alloc_retries=st['num_alloc_retries'])


#: the runtime calls that launch a device kernel
_LAUNCHES = ('cudaLaunchKernel', 'cudaLaunchKernelExC', 'cuLaunchKernel', 'cuLaunchKernelEx')


def profile_step(model: torch.nn.Module, optim_wrapper, batch: dict, device: torch.device,
                 top: int = 6) -> Dict[str, Any]:
    """One iteration under ``torch.profiler``: wall time; on CUDA the kernel
    launches, the time the GPU computed (kernels, copies, sets) and the rest
    of the wall time (the GPU waiting for the CPU: launches, Python, host
    syncs), the ``top`` kernels by time; on the CPU the ``top`` aten ops by
    self time (ms)."""
    from torch.profiler import ProfilerActivity, profile
    cuda = device.type == 'cuda'
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if cuda else [])
    _sync(device)
    with profile(activities=activities) as prof:
        t0 = time.perf_counter()
        run_iteration(model, optim_wrapper, batch)
        _sync(device)
        wall = time.perf_counter() - t0
    events = prof.key_averages()
    out: Dict[str, Any] = dict(wall_ms=wall * 1e3)
    if cuda:
        device_us = {e.key: e.self_device_time_total for e in events
                     if e.self_device_time_total > 0 and not e.key.startswith('aten::')}
        busy = sum(device_us.values()) / 1e3
        out.update(launches=sum(e.count for e in events if e.key in _LAUNCHES),
                   gpu_busy_ms=busy, gpu_idle_ms=max(wall * 1e3 - busy, 0.),
                   top=[(k[:80], v / 1e3) for k, v in sorted(
                       device_us.items(), key=lambda kv: -kv[1])[:top]])
    else:
        cpu_us = {e.key: e.self_cpu_time_total for e in events if e.key.startswith('aten::')}
        out.update(top=[(k, v / 1e3) for k, v in sorted(
            cpu_us.items(), key=lambda kv: -kv[1])[:top]])
    return out


def _free(device: torch.device) -> None:
    import gc
    gc.collect()
    if device.type == 'cuda':
        torch.cuda.empty_cache()


def _sync(device: torch.device) -> None:
    if device.type == 'cuda':
        torch.cuda.synchronize(device)


def speed_table(result: Dict[str, Any]) -> str:
    """Markdown of ``benchmark_speed``'s result (memory and profile columns
    and the top kernels or ops when it measured them)."""
    rows, ref = result['results'], result['reference']
    m, s = result['machine'], result['settings']
    hw = m.get('gpu') or f"{m['cpu']}, {m['torch_threads']} torch thread(s)"
    r0 = rows.get(ref, {})
    mem = any(r.get('memory') for r in rows.values())
    prof = any('launches' in r.get('profile', {}) for r in rows.values())
    head = ('| config | step (s) | time ratio | GFLOPs | FLOPs ratio '
            '| aten ops/step | ops ratio | host syncs/step | syncs vs ref |')
    rule = '|---|---:|---:|---:|---:|---:|---:|---:|---:|'
    if mem:
        head += ' peak (MB) | reserved peak (MB) | inactive split peak (MB) |'
        rule += '---:|---:|---:|'
    if prof:
        head += ' kernel launches | GPU busy (ms) | GPU idle (ms) |'
        rule += '---:|---:|---:|'
    lines = [
        f"Machine: {hw}, torch {m['torch']}, device {m['device']}.  ",
        f"Batch {s['batch_size']}, inputs {s['inputs']}; {s['warmup']} warm-up "
        f"iteration(s), then {s['rounds']} rounds of one iteration per config, "
        f'interleaved. Ratios are to {ref}; the time ratio is the median over '
        'rounds of (config / reference in the same round).',
        '', head, rule]
    for name, r in rows.items():
        if 'error' in r:
            lines.append(f"| {name} | {r['error']} |")
            continue
        line = (f"| {name} | {r['step_time_s']:.3f} | {r['time_ratio']:.2f} | "
                f"{r['gflops']:.2f} | {r['gflops'] / r0['gflops']:.2f} | {r['ops']} | "
                f"{r['ops'] / r0['ops']:.2f} | {r['syncs']} | {r['syncs'] - r0['syncs']:+d} |")
        if mem:
            mm = r.get('memory', {})
            line += ''.join(f" {mm[k]:.0f} |" if k in mm else ' |' for k in (
                'peak_mb', 'reserved_peak_mb', 'inactive_split_peak_mb'))
        if prof:
            pp = r.get('profile', {})
            line += (f" {pp['launches']} | {pp['gpu_busy_ms']:.1f} | {pp['gpu_idle_ms']:.1f} |"
                     if 'launches' in pp else ' | | |')
        lines.append(line)
    tops = [(n, r['profile']['top']) for n, r in rows.items() if r.get('profile')]
    if tops:
        what = 'kernels (GPU ms)' if prof else 'aten ops (self CPU ms)'
        lines += ['', f'Top {what} of one profiled iteration:', '']
        for name, top in tops:
            lines.append(f'- {name}: ' + '; '.join(f'{k} {v:.1f}' for k, v in top))
    return '\n'.join(lines) + '\n'
