"""The GPU speed check of mmlocal (issue 23): what a step of each method costs
against E2E's, measured side by side in one lease.

Sections, in this order (each bounded by what is left of ``--time-limit``):

1. ``step``: ResNet-32 K=16 and ResNet-110 K=55 at batch 1024 and
   DeepLabV3-R101 K=4 at 2 x 512x1024 (synthetic inputs): E2E and every
   method (both PFF modes where the config patches the head), each config
   built once and its iterations interleaved with the others' round after
   round (``mmlocal.apis.benchmark_speed``): the step time and its ratio to
   E2E's in the same round, FLOPs, aten ops and host syncs per step, the CUDA
   caching allocator's peaks (allocated, reserved, inactive split blocks) and
   a profile of one iteration (kernel launches, the time the GPU computed,
   the rest of the step's wall time, the top kernels);
2. ``amp``: E2E, InfoPro and InfoPro+HPFF (ResNet-32 K=16) with mmengine's
   ``AmpOptimWrapper`` in fp16 and bf16 (what ``--amp`` sets);
3. ``allocator``: E2E, DGL, InfoPro, InfoPro+HPFF and DGL+MLAAN (ResNet-32
   K=16) with ``torch.backends.cudnn.benchmark`` off and on: where the local
   methods' CUDA peaks exceed what the CPU allocator predicts (cuDNN's
   algorithm choice and workspaces, the cache's split blocks).

Markdown and JSON go to ``--out`` (``$OUT`` on the device machine) after
every group, so a run cut short keeps what it measured. ``--device cpu
--smoke`` runs the same code on tiny sizes (CI).

    python tools/device/gpu_speed.py --out $OUT              # on the GPU machine
    python tools/device/gpu_speed.py --device cpu --smoke    # here
"""
import argparse
import json
import os
import os.path as osp
import sys
import time
from typing import Any, Dict, List, Optional, Sequence

import mmlocal  # noqa: F401  (compat patches, registrations) before mm*
import torch
from mmengine.logging import MMLogger

from mmlocal.apis import benchmark_speed, speed_table

sys.path.insert(0, osp.dirname(osp.abspath(__file__)))
from gpu_check import DLV3, R32, R110, ROOT, SMOKE_LOCAL, environment  # noqa: E402

BATCHED = {'optim_wrapper.local.pff.mode': 'batched'}
#: the step section's groups: (title, input size, batch, smoke input size, cases,
#: options of every case, smoke options)
STEP = [
    ('ResNet-32 K=16', (32, 32), 1024, (32, 32), [
        ('E2E', R32.format('e2e'), {}),
        ('DGL', R32.format('dgl_k16'), {}),
        ('PredSim', R32.format('predsim_k16'), {}),
        ('InfoPro', R32.format('infopro_k16'), {}),
        ('InfoPro (contrast)', R32.format('infopro-contrast_k16'), {}),
        ('DGL+HPFF', R32.format('dgl_hpff_k16'), {}),
        ('DGL+HPFF, batched PFF', R32.format('dgl_hpff_k16'), BATCHED),
        ('InfoPro+HPFF', R32.format('infopro_hpff_k16'), {}),
        ('InfoPro+HPFF, paper PFF batched', R32.format('infopro_hpff_k16_pff-paper'), BATCHED),
        ('DGL+MLAAN', R32.format('dgl_mlaan_k16'), {}),
    ], {}, {}),
    ('ResNet-110 K=55', (32, 32), 1024, (32, 32), [
        ('E2E', R110.format('e2e'), {}),
        ('DGL', R110.format('dgl_k55'), {}),
        ('InfoPro', R110.format('infopro_k55'), {}),
        ('DGL+HPFF', R110.format('dgl_hpff_k55'), {}),
        ('DGL+HPFF, batched PFF', R110.format('dgl_hpff_k55'), BATCHED),
        ('InfoPro+HPFF', R110.format('infopro_hpff_k55'), {}),
    ], {}, {}),
    ('DeepLabV3-R101 K=4', (512, 1024), 2, (64, 128), [
        ('E2E', DLV3.format('e2e'), {}),
        ('DGL', DLV3.format('infopro_k4'),
         {'optim_wrapper.local.method': dict(_delete_=True, type='DGL')}),
        ('InfoPro', DLV3.format('infopro_k4'), {}),
        ('InfoPro+HPFF', DLV3.format('infopro_hpff'), {}),
    ], {'model.pretrained': None},  # no downloads there
     {'model.backbone.depth': 18, 'model.decode_head.in_channels': 512,  # smoke: ResNet-18
        'model.decode_head.channels': 64, 'model.auxiliary_head.in_channels': 256,
        'model.auxiliary_head.channels': 32}),
]
AMP_CASES = [('E2E', R32.format('e2e'), {}), ('InfoPro', R32.format('infopro_k16'), {}),
             ('InfoPro+HPFF', R32.format('infopro_hpff_k16'), {})]
ALLOCATOR_CASES = [('E2E', R32.format('e2e'), {}), ('DGL', R32.format('dgl_k16'), {}),
                   ('InfoPro', R32.format('infopro_k16'), {}),
                   ('InfoPro+HPFF', R32.format('infopro_hpff_k16'), {}),
                   ('DGL+MLAAN', R32.format('dgl_mlaan_k16'), {})]
SECTIONS = ('step', 'amp', 'allocator')


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('--device', default='cuda', help='cuda (the check) or cpu (--smoke)')
    p.add_argument('--smoke', action='store_true', help='tiny sizes, one round')
    p.add_argument('--out', default=os.environ.get('OUT', 'work_dirs/gpu_speed'),
                   help='folder for NAME.md and NAME.json (default: $OUT)')
    p.add_argument('--name', default='gpu_speed', help='stem of the output files')
    p.add_argument('--sections', nargs='+', default=list(SECTIONS), choices=SECTIONS)
    p.add_argument('--only', nargs='+', metavar='METHOD',
                   help='run only these methods (E2E is always kept: the reference)')
    p.add_argument('--rounds', type=int, default=5, help='interleaved timed rounds per group')
    p.add_argument('--time-limit', type=float, default=420.,
                   help='seconds; groups not started by then are skipped')
    return p.parse_args(argv)


def _specs(cases, options: dict, only) -> List[tuple]:
    """(path, overrides, row name) of the cases kept by ``--only``."""
    return [(osp.join(ROOT, path), dict(opts, **options), name) for name, path, opts in cases
            if not only or name == 'E2E' or name in only]


def _smoke_options(cases, smoke_opts: dict) -> Dict[str, dict]:
    """Per case: a ResNet-18 has no layer3[12], so preset boundaries become K."""
    from mmengine.config import Config
    out = {}
    for name, path, _ in cases:
        opts = dict(smoke_opts)
        local = Config.fromfile(osp.join(ROOT, path)).optim_wrapper.get('local')
        if smoke_opts and local is not None:
            opts.update(SMOKE_LOCAL)
            if local.get('boundaries'):
                opts['optim_wrapper.local.boundaries'] = None
                opts['optim_wrapper.local.num_modules'] = len(local['boundaries']) + 1
        out[name] = opts
    return out


def run_group(args, device, title: str, size, batch: int, cases, options: dict,
              smoke_opts: Optional[dict] = None) -> Dict[str, Any]:
    smoke = _smoke_options(cases, smoke_opts or {}) if args.smoke else {}
    specs = [(path, dict(opts, **smoke.get(name, {})), name)
             for path, opts, name in _specs(cases, options, args.only)]
    result = benchmark_speed(
        specs, batch, rounds=1 if args.smoke else args.rounds, warmup=1 if args.smoke else 2,
        device=device, synthetic=True, input_size=size, reference='E2E', details=True,
        isolate=True, log=lambda line: print(f'[{title}] {line}', flush=True))
    result['title'] = title
    return result


def main(argv: Optional[Sequence[str]] = None) -> dict:
    args = parse_args(argv)
    device = torch.device(args.device)
    if device.type == 'cuda' and not torch.cuda.is_available():
        raise SystemExit('gpu_speed: no CUDA device visible; here use --device cpu --smoke')
    MMLogger.get_instance('gpu_speed', log_level='WARNING')  # no local plan tables
    threads = torch.get_num_threads()
    if device.type == 'cpu':
        torch.set_num_threads(1)  # tiny smoke sizes: more threads only spin
    try:
        return _run(args, device)
    finally:
        torch.set_num_threads(threads)


def _run(args, device: torch.device) -> dict:
    start = time.monotonic()
    os.makedirs(args.out, exist_ok=True)
    report: Dict[str, Any] = dict(environment=environment(device), smoke=args.smoke,
                                  groups=[], skipped=[])
    print('environment: ' + json.dumps(report['environment']), flush=True)

    def write() -> None:
        report['elapsed_s'] = time.monotonic() - start
        with open(osp.join(args.out, f'{args.name}.json'), 'w') as f:
            json.dump(report, f, indent=2, default=str)
        with open(osp.join(args.out, f'{args.name}.md'), 'w') as f:
            f.write(markdown(report))

    groups = []
    if 'step' in args.sections:
        for title, size, bs, smoke_size, cases, options, smoke_opts in STEP:
            bs = 2 if args.smoke else bs
            groups.append((f'{title}, batch {bs}', smoke_size if args.smoke else size, bs,
                           cases, options, smoke_opts, None))
    if 'amp' in args.sections:
        for dtype in ('float16', 'bfloat16'):
            if device.type != 'cuda':  # mmengine's AmpOptimWrapper needs CUDA
                report['skipped'].append(f'AMP {dtype}: CUDA only')
                continue
            groups.append((f'ResNet-32 K=16, batch 1024, AMP {dtype}', (32, 32), 1024, AMP_CASES,
                           {'optim_wrapper.type': 'AmpOptimWrapper',
                            'optim_wrapper.dtype': dtype}, {}, None))
    if 'allocator' in args.sections:
        for bench in (False, True):
            groups.append((f'ResNet-32 K=16, batch {2 if args.smoke else 1024}, '
                           f'cudnn.benchmark={bench}', (32, 32), 2 if args.smoke else 1024,
                           ALLOCATOR_CASES, {}, {}, bench))
    for title, size, bs, cases, options, smoke_opts, cudnn_bench in groups:
        if time.monotonic() - start > args.time_limit:
            report['skipped'].append(f'{title}: time limit')
            continue
        if cudnn_bench is not None:
            torch.backends.cudnn.benchmark = cudnn_bench
        try:
            report['groups'].append(run_group(args, device, title, size, bs, cases, options,
                                              smoke_opts))
        finally:
            torch.backends.cudnn.benchmark = False
        write()
    write()
    print('\n' + markdown(report), flush=True)
    return report


def markdown(report: dict) -> str:
    env = report['environment']
    lines = ['# mmlocal GPU speed check', '', ', '.join(f'{k} {v}' for k, v in env.items()) + '.',
             '']
    for group in report['groups']:
        lines += [f"## {group['title']}", '', speed_table(group)]
    if report['skipped']:
        lines += ['Skipped: ' + '; '.join(report['skipped']) + '.', '']
    if report.get('elapsed_s') is not None:
        lines.append(f"Elapsed: {report['elapsed_s']:.0f} s.")
    return '\n'.join(lines) + '\n'


if __name__ == '__main__':
    main()
