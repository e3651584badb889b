"""Peak activation memory of one auxiliary head with and without PFF.

Runs a local head (forward, loss, backward to its input feature) on a
feature map of the given shape, unpatched and with n x n patch feature
fusion, and reports the peak increase of live tensor memory of each
(``mmlocal.utils.memory``). The head's parameters and the feature are
allocated before the window, so the figure is the head's activations and
gradients::

    python tools/analysis/benchmark_pff.py --method InfoPro --channels 16 \
        --size 32 32 --batch 256 --patches 1 2 4
"""
import argparse
import json
from typing import Dict, List, Optional, Sequence

import mmlocal  # noqa: F401

import torch

from mmlocal.local.head_runner import run_head, run_head_patched
from mmlocal.local.methods import FeatureInfo, TaskInfo, build_method
from mmlocal.local.targets import LocalTargets
from mmlocal.utils.memory import PeakMemoryTracker


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('--method', default='InfoPro', choices=['DGL', 'InfoPro', 'PredSim'])
    p.add_argument('--arch', default='2c2f', help='ConvAuxClassifier arch of psi')
    p.add_argument('--channels', type=int, default=16)
    p.add_argument('--size', type=int, nargs=2, default=(32, 32), help='feature H W')
    p.add_argument('--image', type=int, nargs=2, default=(32, 32), help='image H W')
    p.add_argument('--batch', type=int, default=256)
    p.add_argument('--patches', type=int, nargs='+', default=[1, 2, 4])
    p.add_argument('--out-json')
    return p.parse_args(argv)


def head_peak(method: str, arch: str, channels: int, size, image, batch: int,
              patches: int, seed: int = 0) -> float:
    """Peak increase (MB) of a head's forward + backward to its input."""
    torch.manual_seed(seed)
    cfg = dict(type=method)
    if method != 'PredSim':
        cfg['classifier'] = dict(type='ConvAuxClassifier', arch=arch)
    meth = build_method(cfg)
    head = meth.build_head(FeatureInfo(channels, tuple(size)), TaskInfo('classification', 10),
                           meth.loss_weights(0.))
    feat = torch.randn(batch, channels, *size).requires_grad_()
    targets = LocalTargets(inputs=torch.rand(batch, 3, *image) * 255,
                           labels=torch.randint(0, 10, (batch, )))
    targets.image01  # the target image exists before the window, like the batch

    def step():
        if patches == 1:
            run_head(head, feat, targets, tuple(image), 1.0, lambda l: l.backward())
        else:
            run_head_patched(head, feat, targets, tuple(image), 1.0,
                             lambda l: l.backward(), patches)

    step()  # gradients of the head's parameters exist from now on
    feat.grad = None
    with PeakMemoryTracker('cpu', baseline=0) as tracker:
        step()
    # the gradient w.r.t. the feature is the module's output gradient: it
    # exists with or without PFF (and in E2E), so it is reported apart
    feat_grad = feat.numel() * feat.element_size()
    return tracker.stats.peak_increase_bytes / 2**20, feat_grad / 2**20


def main(argv: Optional[Sequence[str]] = None) -> List[Dict]:
    args = parse_args(argv)
    rows = []
    for n in args.patches:
        mb, grad_mb = head_peak(args.method, args.arch, args.channels, args.size, args.image,
                                args.batch, n)
        rows.append(dict(patches=n, peak_increase_mb=mb, feature_grad_mb=grad_mb,
                         head_mb=mb - grad_mb))
    base = rows[0]['head_mb']
    print(f'{args.method} head (psi {args.arch}), feature {args.batch}x{args.channels}x'
          f'{args.size[0]}x{args.size[1]}, image {args.image[0]}x{args.image[1]}')
    print('| PFF patches | peak increase (MB) | of which feature gradient (MB) | '
          'head memory (MB) | head vs unpatched |\n|---:|---:|---:|---:|---:|')
    for r in rows:
        print(f"| {r['patches']}x{r['patches']} | {r['peak_increase_mb']:.1f} | "
              f"{r['feature_grad_mb']:.1f} | {r['head_mb']:.1f} | {r['head_mb'] / base:.2f}x |")
    if args.out_json:
        with open(args.out_json, 'w') as f:
            json.dump(dict(args=vars(args), rows=rows), f, indent=2)
    return rows


if __name__ == '__main__':
    main()
