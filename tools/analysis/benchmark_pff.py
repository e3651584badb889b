"""Peak activation memory of one auxiliary head with and without PFF.

Runs a local head (forward, loss, backward to its input feature) on a
feature map of the given shape, unpatched and with n x n patch feature
fusion, and reports the peak increase of live tensor memory of each
(``mmlocal.apis.head_peak_memory``). The head's parameters and the feature are
allocated before the window, so the figure is the head's activations and
gradients::

    python tools/analysis/benchmark_pff.py --method InfoPro --channels 16 \
        --size 32 32 --batch 256 --patches 1 2 4
"""
import argparse
import json
from typing import Dict, List, Optional, Sequence

import mmlocal  # noqa: F401

from mmlocal.apis import head_peak_memory


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


def main(argv: Optional[Sequence[str]] = None) -> List[Dict]:
    args = parse_args(argv)
    rows = []
    for n in args.patches:
        mb, grad_mb = head_peak_memory(args.method, args.arch, args.channels, args.size,
                                       args.image, args.batch, n)
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
