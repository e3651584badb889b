"""The GPU check of mmlocal: what CI cannot run, in one short script.

1. **Methods.** Every method's ``train_step`` (E2E, DGL, InfoPro, PredSim,
   DGL+HPFF, InfoPro+HPFF, DGL+MLAAN) on ResNet-32 K=16 at a small batch, in
   fp32 and with AMP in fp16 and bf16: losses finite, the backbone really ran
   in the autocast dtype, which AMP configuration was taken.
2. **Memory and time.** CUDA peak memory (``torch.cuda.max_memory_allocated``
   through ``PeakMemoryTracker``) and step time of E2E against DGL, InfoPro
   and HPFF on ResNet-32 K=16 and ResNet-110 K=55 (batch 1024) and DeepLabV3-R101 K=4
   (2 x 512x1024), synthetic inputs.

Markdown tables and a JSON record go to ``--out`` (``$OUT`` on the device
machine). Every case is isolated: an error is recorded in its row and the
check goes on; sections left when ``--time-limit`` runs out are listed as
skipped. ``--device cpu --smoke`` runs the same code on tiny sizes (CI).

    python tools/device/gpu_check.py --out $OUT            # on the GPU machine
    python tools/device/gpu_check.py --device cpu --smoke  # here
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
import traceback
from typing import Any, Dict, List, Optional, Sequence, Tuple

import mmlocal  # noqa: F401  (compat patches, registrations) before mm*
import torch
from mmengine.config import Config

from mmlocal.apis import build_model_and_optim_wrapper, fit_preprocessor_size, synthetic_batch
from mmlocal.utils.memory import MB, PeakMemoryTracker

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
R32 = 'configs/resnet32_cifar10_{}.py'
R110 = 'configs/resnet110_cifar10_{}.py'
DLV3 = 'configs/deeplabv3_r101_cityscapes_{}.py'

#: (name, config, cfg-options) of the methods section
METHODS = [
    ('E2E', R32.format('e2e'), {}),
    ('DGL', R32.format('dgl_k16'), {}),
    ('InfoPro', R32.format('infopro_k16'), {}),
    ('PredSim', R32.format('predsim_k16'), {}),
    ('DGL+HPFF', R32.format('dgl_hpff_k16'), {}),
    ('InfoPro+HPFF', R32.format('infopro_hpff_k16'), {}),
    ('DGL+MLAAN', R32.format('dgl_mlaan_k16'), {}),
]
#: model -> (input size, batch, smoke input size, smoke batch, cases, smoke options)
MEMORY = {
    'ResNet-32 K=16': ((32, 32), 1024, (32, 32), 2, [
        ('E2E', R32.format('e2e'), {}),
        ('DGL', R32.format('dgl_k16'), {}),
        ('InfoPro', R32.format('infopro_k16'), {}),
        ('DGL+HPFF', R32.format('dgl_hpff_k16'), {}),
        ('InfoPro+HPFF', R32.format('infopro_hpff_k16'), {}),
        ('DGL+MLAAN', R32.format('dgl_mlaan_k16'), {}),
    ], {}),
    'ResNet-110 K=55': ((32, 32), 1024, (32, 32), 2, [
        ('E2E', R110.format('e2e'), {}),
        ('DGL', R110.format('dgl_k55'), {}),
        ('InfoPro', R110.format('infopro_k55'), {}),
        ('DGL+HPFF', R110.format('dgl_hpff_k55'), {}),
        ('InfoPro+HPFF', R110.format('infopro_hpff_k55'), {}),
    ], {}),
    'DeepLabV3-R101 K=4': ((512, 1024), 2, (64, 128), 2, [
        ('E2E', DLV3.format('e2e'), {}),
        ('DGL', DLV3.format('infopro_k4'),
         {'optim_wrapper.local.method': dict(_delete_=True, type='DGL')}),
        ('InfoPro', DLV3.format('infopro_k4'), {}),
        ('InfoPro (peak-balanced)', DLV3.format('infopro_k4-balanced'), {}),
        ('InfoPro+HPFF', DLV3.format('infopro_hpff'), {}),
        ('InfoPro+HPFF (peak-balanced)', DLV3.format('infopro_hpff_k4-balanced'), {}),
    ], {'model.backbone.depth': 18, 'model.decode_head.in_channels': 512,  # smoke: ResNet-18
        'model.decode_head.channels': 64, 'model.auxiliary_head.in_channels': 256,
        'model.auxiliary_head.channels': 32}),
}
#: smoke runs of local configs on smaller backbones than their presets know
SMOKE_LOCAL = {'optim_wrapper.local.split': 'blocks'}
PRECISIONS = (None, 'float16', 'bfloat16')


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('--device', default='cuda', help='cuda (the check) or cpu (--smoke)')
    p.add_argument('--smoke', action='store_true', help='tiny sizes, one step each')
    p.add_argument('--out', default=os.environ.get('OUT', 'work_dirs/gpu_check'),
                   help='folder for NAME.md and NAME.json (default: $OUT)')
    p.add_argument('--name', default='gpu_check', help='stem of the output files')
    p.add_argument('--json', help='path of the JSON record (default: OUT/NAME.json)')
    p.add_argument('--sections', nargs='+', default=['methods', 'memory'],
                   choices=['methods', 'memory'])
    p.add_argument('--only', nargs='+', metavar='METHOD',
                   help='run only these methods (e.g. E2E DGL), in both sections')
    p.add_argument('--methods-batch', type=int, default=64)
    p.add_argument('--iters', type=int, default=3, help='timed steps per memory case')
    p.add_argument('--time-limit', type=float, default=420.,
                   help='seconds; cases not started by then are skipped')
    return p.parse_args(argv)




# ------------------------------------------------------------------ AMP
def amp_variants(optim_wrapper: dict, dtype: Optional[str]) -> List[Tuple[str, dict]]:
    """``optim_wrapper`` configs that train in ``dtype``, preferred first.

    mmengine's ``AmpOptimWrapper`` composed with the local constructor
    (``type='AmpOptimWrapper'``, ``dtype=...``): what ``--amp`` sets.
    """
    if dtype is None:
        return [('fp32', copy.deepcopy(optim_wrapper))]
    new = copy.deepcopy(optim_wrapper)
    new.pop('amp', None)
    new.update(type='AmpOptimWrapper', dtype=dtype)
    return [('AmpOptimWrapper', new)]


def _autocast_dtype(wrapper) -> Optional[torch.dtype]:
    if getattr(wrapper, 'amp', False) or hasattr(wrapper, 'cast_dtype'):
        dtype = getattr(wrapper, 'cast_dtype', None)
        return dtype if dtype is not None else torch.float16
    return None


def build(cfg: Config, device: torch.device, dtype: Optional[str]):
    """Model and optim wrapper of ``cfg`` in ``dtype`` (``None``: fp32),
    trying :func:`amp_variants` in order; returns them and the variant used."""
    errors = []
    for style, ow in amp_variants(cfg.optim_wrapper, dtype):
        trial = copy.deepcopy(cfg)
        trial.optim_wrapper = ow
        try:
            model, wrapper = build_model_and_optim_wrapper(trial, device)
        except Exception as e:  # noqa: BLE001 - the next variant may work
            errors.append(f'{style}: {type(e).__name__}: {e}')
            continue
        local_ok = 'local' not in cfg.optim_wrapper or getattr(wrapper, 'learner', None) is not None
        cast = _autocast_dtype(wrapper)
        if local_ok and (dtype is None or cast == getattr(torch, dtype)):
            return model, wrapper, style
        errors.append(f'{style}: built {type(wrapper).__name__} with local learner '
                      f'{local_ok} and autocast {cast}')
        del model, wrapper
    raise RuntimeError('no optim_wrapper variant trains in '
                       f'{dtype or "fp32"}: ' + ' | '.join(errors))


# ------------------------------------------------------------ utilities
def load(path: str, options: dict, input_size, batch: int, seed: int = 0):
    cfg = Config.fromfile(osp.join(ROOT, path))
    cfg.merge_from_dict(dict(options))
    if cfg.model.get('pretrained') is not None:
        cfg.model.pretrained = None  # no downloads there
    fit_preprocessor_size(cfg, input_size)
    return cfg, synthetic_batch(cfg, batch, input_size, seed)


def _sync(device: torch.device) -> None:
    if device.type == 'cuda':
        torch.cuda.synchronize(device)


def _first_conv_dtype(model: torch.nn.Module):
    """Records the output dtype of the backbone's first convolution."""
    seen: List[torch.dtype] = []
    conv = next(m for m in model.backbone.modules() if isinstance(m, torch.nn.Conv2d))
    handle = conv.register_forward_hook(lambda m, a, out: seen.append(out.dtype))
    return seen, handle


def _finite(log_vars: Dict[str, Any]) -> Tuple[bool, float]:
    values = {k: float(v) for k, v in log_vars.items()}
    return all(v == v and abs(v) != float('inf') for v in values.values()), values.get('loss', float('nan'))


def _free(device: torch.device) -> None:
    gc.collect()
    if device.type == 'cuda':
        torch.cuda.empty_cache()


# ------------------------------------------------------------- sections
def check_methods(args, device, deadline, rows: List[dict], done=lambda: None) -> List[dict]:
    """Two train_steps of every method in every precision, appended to ``rows``
    (``done()`` after each, so a run killed at its limit keeps what it measured)."""
    batch_size = 2 if args.smoke else args.methods_batch
    precisions = PRECISIONS if device.type == 'cuda' else (None,)
    for name, path, options in METHODS:
        if args.only and name not in args.only:
            continue
        for dtype in precisions:
            row = dict(method=name, config=path, precision=dtype or 'fp32')
            rows.append(row)
            if time.monotonic() > deadline:
                row.update(status='skipped (time limit)')
                continue
            try:
                cfg, batch = load(path, options, (32, 32), batch_size)
                torch.manual_seed(0)
                model, wrapper, style = build(cfg, device, dtype)
                seen, handle = _first_conv_dtype(model)
                losses = []
                for _ in range(2):
                    _sync(device)
                    t0 = time.perf_counter()
                    log_vars = model.train_step(batch, wrapper)
                    _sync(device)
                    ok, loss = _finite(log_vars)
                    losses.append(loss)
                handle.remove()
                row.update(status='ok' if ok else 'NON-FINITE LOSS', amp=style,
                           conv_dtype=str(seen[-1]).replace('torch.', '') if seen else '?',
                           loss=losses[-1], step_s=time.perf_counter() - t0,
                           modules=getattr(getattr(wrapper, 'learner', None),
                                           'num_modules', 1))
                del model, wrapper
            except Exception as e:  # noqa: BLE001 - recorded, the check goes on
                row.update(status=f'ERROR {type(e).__name__}: {e}'.splitlines()[0][:300],
                           traceback=traceback.format_exc())
            _free(device)
            done()
            print(f"[methods] {name} {row['precision']}: {row['status']}", flush=True)
    return rows


def measure_case(cfg: Config, batch: dict, device: torch.device, iters: int) -> dict:
    torch.manual_seed(0)
    model, wrapper, _ = build(cfg, device, None)
    model.train_step(batch, wrapper)  # warm-up: optimizer state, kernels
    times = []
    for _ in range(iters):
        _sync(device)
        t0 = time.perf_counter()
        model.train_step(batch, wrapper)
        _sync(device)
        times.append(time.perf_counter() - t0)
    with PeakMemoryTracker(device, baseline=(model, wrapper)) as tracker:
        model.train_step(batch, wrapper)
        tracker.reset_peak()
        model.train_step(batch, wrapper)
    stats = tracker.stats
    bounds = getattr(getattr(wrapper, 'learner', None), 'boundaries', [])
    del model, wrapper
    return dict(peak_mb=stats.peak_bytes / MB, baseline_mb=stats.baseline_bytes / MB,
                increase_mb=stats.peak_increase_bytes / MB,
                step_s=statistics.median(times), boundaries=list(bounds))


def check_memory(args, device, deadline, tables: Dict[str, List[dict]],
                 done=lambda: None) -> Dict[str, List[dict]]:
    """Peak memory and step time of every case, filled into ``tables``."""
    for model_name, (size, bs, smoke_size, smoke_bs, cases, smoke_opts) in MEMORY.items():
        size, bs = (smoke_size, smoke_bs) if args.smoke else (size, bs)
        rows = []
        tables[f'{model_name}, batch {bs} x {size[0]}x{size[1]}'] = rows
        for name, path, options in cases:
            if args.only and name not in args.only:
                continue
            row = dict(method=name, config=path)
            rows.append(row)
            if time.monotonic() > deadline:
                row.update(status='skipped (time limit)')
                continue
            try:
                opts = dict(options, **(smoke_opts if args.smoke else {}))
                local = Config.fromfile(osp.join(ROOT, path)).optim_wrapper.get('local')
                if args.smoke and smoke_opts and local is not None:
                    opts.update(SMOKE_LOCAL)
                    if local.get('boundaries'):  # a ResNet-18 has no layer3[12]: same K
                        opts['optim_wrapper.local.boundaries'] = None
                        opts['optim_wrapper.local.num_modules'] = len(local['boundaries']) + 1
                cfg, batch = load(path, opts, size, bs)
                row.update(measure_case(cfg, batch, device, 1 if args.smoke else args.iters),
                           status='ok')
            except Exception as e:  # noqa: BLE001
                row.update(status=f'ERROR {type(e).__name__}: {e}'.splitlines()[0][:300],
                           traceback=traceback.format_exc())
            _free(device)
            done()
            print(f'[memory] {model_name} {name}: {row["status"]} '
                  f'{row.get("peak_mb", float("nan")):.1f} MB', flush=True)
    return tables


# --------------------------------------------------------------- report
def environment(device: torch.device) -> dict:
    info = dict(python=platform.python_version(), torch=torch.__version__,
                cuda=torch.version.cuda, device=str(device))
    for mod in ('mmcv', 'mmengine', 'mmseg', 'mmpretrain', 'mmdet'):
        try:
            info[mod] = __import__(mod).__version__
        except Exception as e:  # noqa: BLE001
            info[mod] = f'missing ({e})'
    try:
        import mmcv.ops  # noqa: F401
        info['mmcv_ops'] = 'ok'
    except Exception as e:  # noqa: BLE001
        info['mmcv_ops'] = f'missing ({e})'
    if device.type == 'cuda':
        info['gpu'] = torch.cuda.get_device_name(device)
    return info


def markdown(result: dict) -> str:
    env = result['environment']
    lines = ['# mmlocal GPU check', '',
             ', '.join(f'{k} {v}' for k, v in env.items()) + '.', '']
    if 'methods' in result:
        lines += ['## train_step of every method (ResNet-32 K=16, synthetic CIFAR batch)', '',
                  '| method | precision | status | AMP via | first conv dtype | loss | step (s) |',
                  '|---|---|---|---|---|---:|---:|']
        for r in result['methods']:
            lines.append(f"| {r['method']} | {r['precision']} | {r['status']} | {r.get('amp', '')} | "
                         f"{r.get('conv_dtype', '')} | {r.get('loss', float('nan')):.4f} | "
                         f"{r.get('step_s', float('nan')):.3f} |")
        lines.append('')
    for title, rows in result.get('memory', {}).items():
        ref = next((r for r in rows if r['method'] == 'E2E' and 'peak_mb' in r), None)
        lines += [f'## Peak memory and step time: {title}', '',
                  '| method | status | peak (MB) | vs E2E | step (s) | vs E2E | boundaries |',
                  '|---|---|---:|---:|---:|---:|---|']
        for r in rows:
            if 'peak_mb' not in r:
                lines.append(f"| {r['method']} | {r['status']} | | | | | |")
                continue
            pm = r['peak_mb'] / ref['peak_mb'] if ref else float('nan')
            ts = r['step_s'] / ref['step_s'] if ref else float('nan')
            b = ', '.join(p.replace('backbone.', '') for p in r['boundaries'])
            if len(r['boundaries']) > 6:
                b = f"{len(r['boundaries'])} boundaries"
            lines.append(f"| {r['method']} | ok | {r['peak_mb']:.1f} | {pm:.2f} | "
                         f"{r['step_s']:.3f} | {ts:.2f} | {b} |")
        lines.append('')
    if result.get('elapsed_s') is not None:
        lines.append(f"Elapsed: {result['elapsed_s']:.0f} s.")
    return '\n'.join(lines) + '\n'


def main(argv: Optional[Sequence[str]] = None) -> dict:
    args = parse_args(argv)
    device = torch.device(args.device)
    if device.type == 'cuda' and not torch.cuda.is_available():
        raise SystemExit('gpu_check: no CUDA device visible; here use --device cpu --smoke')
    start = time.monotonic()
    deadline = start + args.time_limit
    os.makedirs(args.out, exist_ok=True)
    if args.json:
        os.makedirs(osp.dirname(osp.abspath(args.json)), exist_ok=True)
    result: Dict[str, Any] = dict(environment=environment(device), smoke=args.smoke)
    print('environment: ' + json.dumps(result['environment']), flush=True)

    def write() -> None:
        result['elapsed_s'] = time.monotonic() - start
        with open(args.json or osp.join(args.out, f'{args.name}.json'), 'w') as f:
            json.dump(result, f, indent=2, default=str)
        with open(osp.join(args.out, f'{args.name}.md'), 'w') as f:
            f.write(markdown(result))

    if 'methods' in args.sections:
        check_methods(args, device, deadline, result.setdefault('methods', []), write)
    if 'memory' in args.sections:
        check_memory(args, device, deadline, result.setdefault('memory', {}), write)
    write()
    print('\n' + markdown(result), flush=True)
    return result


if __name__ == '__main__':
    main()
