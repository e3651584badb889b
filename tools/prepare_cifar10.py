"""Extract the class-folder CIFAR-10 archive for ``configs/*cifar10*``.

The archive (``cifar10_jpg.tar.gz``) holds ``train/<class>/NNNN.jpg`` and
``test/<class>/NNNN.jpg`` with no top folder, so it extracts straight into the
``data_root`` of ``configs/_base_/datasets/cifar10_folder.py``::

    python tools/prepare_cifar10.py ../shared/data/cifar10_jpg.tar.gz data/cifar10
    # equivalent: mkdir -p data/cifar10 && tar xzf ../shared/data/cifar10_jpg.tar.gz -C data/cifar10

``--per-class-train/--per-class-test`` extract a class-balanced random subset
instead (files are grouped by class in the archive, so a prefix would not
do); this is how the bundled ``data/cifar10_mini`` was made::

    python tools/prepare_cifar10.py ../shared/data/cifar10_jpg.tar.gz \
        data/cifar10_mini --per-class-train 200 --per-class-test 50 --seed 0
"""
import argparse
import os
import os.path as osp
import random
import tarfile
from collections import defaultdict
from typing import Dict, List, Optional

SPLITS = ('train', 'test')


def select_members(members: List[tarfile.TarInfo],
                   per_class: Dict[str, Optional[int]],
                   seed: int) -> List[tarfile.TarInfo]:
    """Pick ``per_class[split]`` random images of every class (all if None)."""
    groups: Dict[tuple, List[tarfile.TarInfo]] = defaultdict(list)
    for m in members:
        parts = m.name.lstrip('./').split('/')
        if m.isfile() and len(parts) == 3 and parts[0] in SPLITS:
            groups[(parts[0], parts[1])].append(m)
    if not groups:
        raise ValueError('no <split>/<class>/<image> files in the archive; '
                         f'expected splits {SPLITS}')
    rng = random.Random(seed)
    chosen = []
    for key in sorted(groups):
        files = sorted(groups[key], key=lambda m: m.name)
        n = per_class[key[0]]
        if n is not None:
            if n > len(files):
                raise ValueError(f'{key[0]}/{key[1]} has {len(files)} images, '
                                 f'fewer than the {n} asked for')
            files = rng.sample(files, n)
        chosen += files
    # archive order: a gzip stream cannot seek back, so any other order
    # re-decompresses from the start for every member (hours for 60k files)
    return sorted(chosen, key=lambda m: m.offset)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('archive', help='path of cifar10_jpg.tar.gz')
    parser.add_argument('out', help='data root to create, e.g. data/cifar10')
    parser.add_argument('--per-class-train', type=int, default=None,
                        help='images per class in train/ (default: all)')
    parser.add_argument('--per-class-test', type=int, default=None,
                        help='images per class in test/ (default: all)')
    parser.add_argument('--seed', type=int, default=0)
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    if not osp.isfile(args.archive):
        raise FileNotFoundError(f'archive {args.archive!r} not found')
    with tarfile.open(args.archive) as tar:
        members = select_members(
            tar.getmembers(),
            dict(train=args.per_class_train, test=args.per_class_test),
            args.seed)
        os.makedirs(args.out, exist_ok=True)
        tar.extractall(args.out, members=members, filter='data')
    counts = defaultdict(int)
    for m in members:
        counts[m.name.lstrip('./').split('/')[0]] += 1
    print(f'extracted {dict(counts)} images into {args.out}')


if __name__ == '__main__':
    main()
