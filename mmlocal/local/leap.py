"""Which later blocks MLAAN copies in front of a module's head.

The authors' tables (ALGORITHMS.md §6.5) for the CIFAR ResNets, and a rule
for every other split: the first block of each later stage (for the
downsampling and channels), one sparse "leap" block of the last stage and
always the network's final block.
"""
from typing import Dict, List, Sequence, Tuple

from .block_lists import stem_of

StageBlock = Tuple[int, int]

def _row(copies: str) -> List[StageBlock]:
    """'2.0 3.0 3.2' -> [(2, 0), (3, 0), (3, 2)] ([stage, block] of §6.5,
    stage = the ``layer`` number)."""
    return [tuple(int(v) for v in c.split('.')) for c in copies.split()]


# key: (depth, K) with K counting the stem; row i = HP/ML segment index
# (the stem is no segment, ALGORITHMS.md §1.1); ML configAuxPlus_new.py /
# configAux_new.py as ALGORITHMS.md §6.5 gives them.
_TABLES: Dict[Tuple[int, int], List[List[StageBlock]]] = {
    # R32 S=15: layer1 rows alternate [3,2] / [3,3] (rows 2 and 4 are [3,3])
    (32, 16): [_row('2.0 3.0 3.2 3.4'), _row('2.0 3.0 3.2 3.4'), _row('2.0 3.0 3.3 3.4'),
               _row('2.0 3.0 3.2 3.4'), _row('2.0 3.0 3.3 3.4')] +
              [_row('3.0 3.2 3.3 3.4')] * 5 +
              [_row('3.1 3.2 3.4'), _row('3.2 3.3 3.4'), _row('3.3 3.4'), _row('3.4')],
    (32, 8): [_row('2.0 3.0 3.2 3.4')] * 2 + [_row('2.0 3.0 3.3 3.4')] +
             [_row('3.0 3.2 3.3 3.4')] * 2 + [_row('3.2 3.3 3.4'), _row('3.3 3.4'), _row('3.4')],
    (110, 55): [_row('2.0 3.0 3.2 3.17')] * 18 + [_row('3.0 3.2 3.3 3.17')] * 17 +
               [_row('3.0 3.3 3.4 3.17')] + [_row('3.8 3.17')] * 7 + [_row('3.14 3.17')] * 4 +
               [_row('3.15 3.17')] * 2 + [_row('3.16 3.17')] * 3 + [_row('3.17')],
    # ImageNet ResNet-34 S=16 (layers of 3, 4, 6, 3 blocks; the auxnet34 code)
    (34, 17): [_row('2.0 2.1 3.0 4.0 4.2')] * 3 + [_row('2.1 3.0 4.0 4.2')] * 4 +
              [_row('3.1 4.0 4.1')] * 6 + [_row('4.1 4.1 4.2'), _row('4.1 4.2')],
    # ImageNet ResNet-101 S=33 (layers of 3, 4, 23, 3 blocks)
    (101, 34): [_row('2.0 3.0 4.0 4.2')] * 3 + [_row('3.0 4.0 4.1')] * 4 +
               [_row('4.0 4.1')] * 23 + [_row('4.1 4.2')] * 2,
}


def _parse(path: str) -> Tuple[str, int]:
    layer, idx = path.rsplit('.', 2)[-2:]
    return layer, int(idx)


def leap_rule(boundary: str, paths: Sequence[str]) -> List[str]:
    """Later blocks to copy after ``boundary`` (any ResNet-like split)."""
    pos = paths.index(boundary)
    later = list(paths[pos + 1:])
    if not later:
        return []
    stages: Dict[str, List[str]] = {}
    for p in later:
        stages.setdefault(p.rsplit('.', 1)[0], []).append(p)
    names = list(stages)
    own = boundary.rsplit('.', 1)[0]
    chosen: List[str] = []
    for name in names:
        if name != own:
            chosen.append(stages[name][0])
    last_stage = stages[names[-1]]
    if len(last_stage) > 2:
        mid = last_stage[len(last_stage) // 2]
        if mid not in chosen:
            chosen.append(mid)
    if last_stage[-1] not in chosen:
        chosen.append(last_stage[-1])
    return sorted(chosen, key=paths.index)


def leap_blocks(boundaries: Sequence[str], paths: Sequence[str], depth=None,
                table: str = 'auto') -> List[List[str]]:
    """Copied block paths for every boundary (local module)."""
    k = len(boundaries) + 1
    rows = _TABLES.get((depth, k)) if table in ('auto', 'mlaan') else None
    if table == 'mlaan' and rows is None:
        raise ValueError(f'MLAAN has no copy table for depth {depth}, K={k}; '
                         "use mlaan.table='auto' (rule for any split)")
    prefix = paths[-1].rsplit('.layer', 1)[0]
    has_stem = bool(boundaries) and boundaries[0] == stem_of(paths)
    result = []
    for j, b in enumerate(boundaries):
        if rows is not None:
            # the authors' segment index (the stem module uses the first row)
            row = rows[max(j - int(has_stem), 0)]
            result.append([f'{prefix}.layer{s}.{i}' for s, i in row])
        else:
            result.append(leap_rule(b, paths))
    return result
