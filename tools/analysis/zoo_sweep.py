"""Train zoo configs of mmpretrain, mmseg and mmdet locally and write the table.

Runs the cases of ``mmlocal.testing.zoo.ZOO_CASES`` (configs straight from
the toolboxes' model zoos, random init, small real batches) through the
checks of ``mmlocal.testing.zoo.check_case``: K=1 equals E2E, every trainable
parameter gets a gradient, module 1 is isolated from the last module, and one
``train_step`` with the config's own optimizer and ``clip_grad``. The table
replaces the one between the markers of ``docs/zoo.md``.

Example::

    python tools/analysis/zoo_sweep.py                       # all cases -> docs/zoo.md
    python tools/analysis/zoo_sweep.py --only segformer fcos --out -   # print only
"""
import argparse
import os
import os.path as osp
import re
import time
from typing import List, Optional

import mmlocal  # noqa: F401  (compat patches, registrations) before mm*
import torch
from mmengine.logging import MMLogger

from mmlocal.testing.zoo import ZOO_CASES, check_case, format_table

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
BEGIN, END = '<!-- zoo-table -->', '<!-- /zoo-table -->'


def main(argv: Optional[List[str]] = None) -> str:
    """Run the chosen cases; return the table (and write it unless ``--out -``)."""
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--only', nargs='+', help='run the cases whose config contains one '
                        'of these strings')
    parser.add_argument('--out', default=osp.join(ROOT, 'docs', 'zoo.md'),
                        help="markdown file whose table is replaced ('-': print only)")
    parser.add_argument('--threads', type=int, default=1,
                        help='torch intra-op threads per case (default 1: tiny inputs)')
    args = parser.parse_args(argv)
    cases = [c for c in ZOO_CASES if not args.only or any(s in c.config for s in args.only)]
    if not cases:
        parser.error(f'--only {args.only} matches no case; the cases: '
                     f'{[c.config for c in ZOO_CASES]}')
    if args.out != '-':  # refused before the sweep, not after it
        with open(args.out) as f:
            doc = f.read()
        if BEGIN not in doc or END not in doc:
            parser.error(f'{args.out} has no {BEGIN} ... {END} markers for the table: add '
                         'them where the table goes, or print it with --out -')
    MMLogger.get_instance('zoo_sweep', log_level='WARNING')
    results, start = [], time.perf_counter()
    for case in cases:
        results.append(check_case(case, threads=args.threads))
        print(format_table(results[-1:]).splitlines()[-1], flush=True)
    total = time.perf_counter() - start
    passed = sum(r.passed for r in results)
    cpu = sum(r.cpu_seconds for r in results)
    table = (f'{format_table(results)}\n\n{passed} of {len(results)} cases pass; '
             f'{total:.0f} s in all ({cpu:.0f} s of CPU time), torch {torch.__version__}, '
             f'{args.threads} thread(s), {os.cpu_count()} CPU cores.')
    if args.out == '-':
        print(table)
        return table
    doc = re.sub(re.escape(BEGIN) + '.*' + re.escape(END), lambda _: f'{BEGIN}\n{table}\n{END}',
                 doc, flags=re.S)
    with open(args.out, 'w') as f:
        f.write(doc)
    print(f'{passed}/{len(results)} pass; table written to {args.out}')
    return table


if __name__ == '__main__':
    main()
