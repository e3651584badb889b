"""Golden tests of the local plan: for ResNet-32 K=16 and ResNet-110 K=55 the
plan built from the configs equals a table derived here, independently, from
the authors' loops (§2.1 InfoPro, §3 DGL, §5.2 HPFF, §6.3 MLAAN, §6.5 copy
tables of ALGORITHMS.md). Nothing here calls mmlocal's schedule code: the
loops below are written out from the text and, where the authors' code
differs from ALGORITHMS.md, from the code (each such place says so):

* InfoPro+MLAAN (``resnetInfoProbin.py`` lines 329-332): lambda's ratio uses
  the segment's *stage* over local_module_num - 2 = S - 2 (ALGORITHMS.md
  §6 gives no ratio; §8 lists the stage index as a defect);
* InfoPro+MLAAN's EMA branches are trained by SGD (``resnetInfoProbin.py``
  never sets requires_grad=False; ALGORITHMS.md §6.4 calls them frozen, true
  of ``resnetDGLbin.py`` and ``resnetMLAAN.py``);
* the standalone MLAAN (``resnetMLAAN.py``, §6.2) is the k=2 loop with the
  ``auxMLAAN`` GAP -> Linear heads.

Module numbering: mmlocal's K=16 (K=55) split is the stem, then every block
but the last (ALGORITHMS.md §1.2, InfoPro's split points [0,0], [1,0] ...).
The HPFF/MLAAN code has S = K-1 segments E_0..E_{S-1}, one block each, the
stem outside them (§1.1): segment i is mmlocal module i+1, the stem module 0.
"""
import os.path as osp

import pytest
from mmengine.config import Config

from mmlocal.local.block_lists import BlockList
from mmlocal.local.config import LocalConfig, PFFConfig
from mmlocal.local.leap import leap_blocks
from mmlocal.local.plan import build_plan, plan_for

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
WX, WY = 0.001, 0.999  # HPFF / MLAAN CIFAR code (§5.2, §6.3)


def blocks(depth):
    """The CIFAR ResNet's block list, the stem marked (as ``block_paths`` gives it)."""
    n = (depth - 2) // 6
    return BlockList(['backbone.stem'] + [f'backbone.layer{s}.{b}' for s in (1, 2, 3)
                                          for b in range(n)], stem=True)


def local_cfg(name):
    return Config.fromfile(osp.join(ROOT, 'configs', name)).optim_wrapper.local


def plan_of(name, depth):
    local = dict(local_cfg(name))
    paths = blocks(depth)
    return plan_for(paths[:-1], paths, depth, _plan_keys(local))


def _plan_keys(local):
    """The keys of a config's ``local`` that the plan reads (not its split)."""
    return {k: v for k, v in local.items()
            if k in ('method', 'hilo', 'pff', 'mlaan', 'stem', 'schedule')}


def rows(plan):
    """(key, module, kind, weight, reach, loss weights, patches, pff, leap, ema,
    EMA branch trained)."""
    return sorted(
        (h.key, h.module, h.kind, round(h.weight, 9), h.reach,
         tuple(sorted((k, round(v, 9)) for k, v in h.loss_weights.items())),
         h.patches, h.pff, tuple(p.split('backbone.')[1] for p in h.leap), h.ema,
         bool(h.leap) and h.ema_branch == 'trained')
        for h in plan.heads)


def row(key, module, kind, weight, reach, lw, patches=1, pff='', leap=(), ema=False,
        ema_trained=False):
    return (key, module, kind, round(weight, 9), reach,
            tuple(sorted((k, round(v, 9)) for k, v in lw.items())), patches, pff,
            tuple(leap), ema, ema_trained)


def lam(ends, r):
    a, b = ends
    return a * (1 - r) + b * r


# --------------------------------------------------------------- the loops
def infopro_loop(K, head):
    """InfoPro's CIFAR loop (§2.1): for m = 0..K-2, r = m/(K-2), loss on
    module m's output, then detach. ``head(m, r)`` gives the loss weights."""
    out = []
    for m in range(K - 1):
        r = m / (K - 2) if K > 2 else 0.
        out.append(row(f'm{m + 1}', m, 'independent', 1., m, head(m, r)))
    return out, (K - 1, 0.)


def segment_loop(K, head):
    """InfoPro in HPFF/MLAAN's segment indexing (§1.1, §5.2): x = stem(img);
    for i = 0..S-2: x = E_i(x); loss (r = i/(K-2)); detach. The stem is in
    no segment, so E_0's loss reaches it."""
    S = K - 1
    out = []
    for i in range(S - 1):
        r = i / (K - 2)
        out.append(row(f'm{i + 2}', i + 1, 'independent', 1., 0 if i == 0 else i + 1,
                       head(i, r)))
    return out, (K - 1, 0.)


def hpff_loop(K, ind_head, cas_head, ind_pff=(1, ''), cas_pff=(1, '')):
    """HPFF's CIFAR loop (§5.2). y = clone(stem(img)); for i in 1..S-2:
    x = E_i(x) (input detached); y = E_{i-1}(y); z = E_i(y) (y's input
    detached, except y = stem output at i = 1); r = i/(K-2);
    (wx L_ind(x) + wy L_cas(z)).backward(). Final: wx CE(x) + wy CE(y) with
    y = E_{S-1}(E_{S-2}(y))."""
    S = K - 1
    out = []
    for i in range(1, S - 1):
        r = i / (K - 2)
        out.append(row(f'm{i + 2}', i + 1, 'independent', WX, i + 1, ind_head(r),
                       *ind_pff))
        reach = 0 if i == 1 else i  # module of E_{i-1}; the stem with it at i = 1
        out.append(row(f'm{i + 2}.cascade', i + 1, 'cascade', WY, reach, cas_head(r),
                       *cas_pff))
    return out, (S - 1, WY)  # the task loss reaches E_{S-2} = module S-1


def mlaan_loop(K, ind_head, cas_head, table, stage_ratio=False, ema_trained=False):
    """MLAAN's k=3 CIFAR loop (§6.3): for i in 2..S-2: independent loss on
    E_i; cascade (E_{i-2}, E_{i-1}, E_i), reaching the stem at i = 2, then the
    leap copies of row i of the table; EMA of the last LAM only. Final:
    CE(fc(y)) with y = E_{S-1}(E_{S-2}(E_{S-3}(y))) (weight 1).

    ``stage_ratio`` (the code, ``resnetInfoProbin.py`` 329-330, not in
    ALGORITHMS.md): r = stage / (local_module_num - 2), stage = 1..3 of
    segment i's block (``infopro_config[i][0]``), local_module_num = S.
    ``ema_trained``: the code never freezes the EMA copies (not §6.4)."""
    S = K - 1
    per_stage = S // 3  # one block per segment: 5 (R32), 18 (R110)
    out = []
    for i in range(2, S - 1):
        r = (1 + i // per_stage) / (S - 2) if stage_ratio else i / (K - 2)
        out.append(row(f'm{i + 2}', i + 1, 'independent', WX, i + 1, ind_head(r)))
        reach = 0 if i == 2 else i - 1  # module of E_{i-2}
        leap = [f'layer{s}.{b}' for s, b in table[i]]
        out.append(row(f'm{i + 2}.cascade', i + 1, 'cascade', WY, reach, cas_head(r),
                       leap=leap, ema=(i == S - 2), ema_trained=ema_trained))
    return out, (S - 2, 1.)


def mlaan_k2_loop(K, table):
    """The standalone MLAAN, ``resnetMLAAN.py`` (§6.2; the code, lines
    303-344): for i in 1..S-2: ``net_classifier`` on E_i (input detached,
    weight wx), cascade (E_{i-1}, E_i) reaching the stem at i = 1, leap copies
    of row i, ``aux_classifier`` (weight wy); both heads GAP -> Linear + CE;
    frozen EMA copies, the last one updated. Final: CE(fc64(y)),
    y = E_{S-1}(E_{S-2}(y)) (weight 1)."""
    S = K - 1
    out = []
    for i in range(1, S - 1):
        out.append(row(f'm{i + 2}', i + 1, 'independent', WX, i + 1, {'cls': 1.}))
        leap = [f'layer{s}.{b}' for s, b in table[i]]
        out.append(row(f'm{i + 2}.cascade', i + 1, 'cascade', WY, 0 if i == 1 else i,
                       {'cls': 1.}, leap=leap, ema=(i == S - 2)))
    return out, (S - 1, 1.)


def authors_runs(S, k, independent=True):
    """How often the authors' loops run each segment's blocks in one step
    (§5.2, §5.4, §6.3): the x path runs every segment (HPFF's ImageNet code,
    whose independent path is commented out, only E_0), each window
    E_{i-k+1}..E_i re-runs on the y path for i = k-1..S-2, and the final
    window E_{S-k}..E_{S-1} once more."""
    runs = [0] * S
    for i in range(S - 1):
        if independent or i == 0:
            runs[i] += 1
        if i >= k - 1:
            for j in range(i - k + 1, i + 1):
                runs[j] += 1
    if independent:
        runs[S - 1] += 1
    for j in range(S - k, S):
        runs[j] += 1
    return runs


def r32_table():
    """§6.5, R32 S=15 (rows 2 and 4 of layer1 copy [3,3])."""
    l1 = [[(2, 0), (3, 0), (3, 2), (3, 4)], [(2, 0), (3, 0), (3, 2), (3, 4)],
          [(2, 0), (3, 0), (3, 3), (3, 4)], [(2, 0), (3, 0), (3, 2), (3, 4)],
          [(2, 0), (3, 0), (3, 3), (3, 4)]]
    return l1 + [[(3, 0), (3, 2), (3, 3), (3, 4)]] * 5 + [
        [(3, 1), (3, 2), (3, 4)], [(3, 2), (3, 3), (3, 4)], [(3, 3), (3, 4)], [(3, 4)]]


def r110_table():
    """§6.5, R110 S=54."""
    t = [[(2, 0), (3, 0), (3, 2), (3, 17)]] * 18
    t += [[(3, 0), (3, 2), (3, 3), (3, 17)]] * 17 + [[(3, 0), (3, 3), (3, 4), (3, 17)]]
    t += [[(3, 8), (3, 17)]] * 7 + [[(3, 14), (3, 17)]] * 4 + [[(3, 15), (3, 17)]] * 2
    t += [[(3, 16), (3, 17)]] * 3 + [[(3, 17)]]
    return t


def dgl(*_):
    return {'cls': 1.}


def infopro_head(recon, task):
    return lambda *a: {'recon': lam(recon, a[-1]), 'task': lam(task, a[-1])}


HP = ((5., 0.), (0.5, 0.))  # HPFF / MLAAN README (§2.2 last paragraph)


def expected(method, K):
    hp = infopro_head(*HP)
    if method == 'dgl':
        return infopro_loop(K, dgl)  # §3: the same loop with psi only
    if method == 'infopro':
        return segment_loop(K, hp)
    if method == 'infopro-own':  # §2.2 R32 K=16 (5, 0.05) -> (0.2, 0.5)
        return infopro_loop(K, infopro_head((5., 0.2), (0.05, 0.5)))
    if method == 'dgl_hpff':
        return hpff_loop(K, dgl, dgl, (2, 'paper'), (2, 'paper'))
    if method == 'infopro_hpff':
        return hpff_loop(K, dgl, hp, (1, ''), (2, 'quadrant'))
    table = r32_table() if K == 16 else r110_table()
    if method == 'dgl_mlaan':
        return mlaan_loop(K, dgl, dgl, table)
    if method == 'infopro_mlaan':
        return mlaan_loop(K, hp, hp, table, stage_ratio=True, ema_trained=True)
    if method == 'mlaan':
        return mlaan_k2_loop(K, table)
    raise KeyError(method)


CASES = [
    ('resnet32_cifar10_dgl_k16.py', 32, 'dgl'),
    ('resnet32_cifar10_infopro_k16.py', 32, 'infopro'),
    ('resnet32_cifar10_infopro-contrast_k16.py', 32, 'infopro-own'),
    ('resnet32_cifar10_dgl_hpff_k16.py', 32, 'dgl_hpff'),
    ('resnet32_cifar10_infopro_hpff_k16.py', 32, 'infopro_hpff'),
    ('resnet32_cifar10_dgl_mlaan_k16.py', 32, 'dgl_mlaan'),
    ('resnet32_cifar10_infopro_mlaan_k16.py', 32, 'infopro_mlaan'),
    ('resnet110_cifar10_dgl_k55.py', 110, 'dgl'),
    ('resnet110_cifar10_infopro_k55.py', 110, 'infopro'),
    ('resnet110_cifar10_dgl_hpff_k55.py', 110, 'dgl_hpff'),
    ('resnet110_cifar10_infopro_hpff_k55.py', 110, 'infopro_hpff'),
    ('resnet110_cifar10_dgl_mlaan_k55.py', 110, 'dgl_mlaan'),
    ('resnet32_cifar10_mlaan_k16.py', 32, 'mlaan'),
    ('resnet110_cifar10_mlaan_k55.py', 110, 'mlaan'),
]


@pytest.mark.parametrize('name,depth,method', CASES)
def test_plan_matches_the_authors_loop(name, depth, method):
    K = 16 if depth == 32 else 55
    plan = plan_of(name, depth)
    assert plan.num_modules == K
    heads, (task_reach, below) = expected(method, K)
    assert rows(plan) == sorted(heads)
    assert (plan.task_reach, round(plan.task_weight_below, 9)) == (task_reach, below)
    plan.check_supervised()


@pytest.mark.parametrize('depth', [32, 110])
def test_infopro_mlaan_and_own_setting_at_both_depths(depth):
    """InfoPro+MLAAN (R110 has no config) and InfoPro's own indexing at K=55,
    built from the R32 configs' settings on the deeper split."""
    K = 16 if depth == 32 else 55
    paths = blocks(depth)
    local = dict(local_cfg('resnet32_cifar10_infopro_mlaan_k16.py'))
    plan = plan_for(paths[:-1], paths, depth, _plan_keys(local))
    heads, (task_reach, below) = expected('infopro_mlaan', K)
    assert rows(plan) == sorted(heads)
    assert (plan.task_reach, plan.task_weight_below) == (task_reach, below)
    own = dict(type='InfoPro', recon_weights=(5., 0.5), task_weights=(0., 1.))
    plan = build_plan(paths[:-1], dict(method=own))
    heads, task = infopro_loop(K, infopro_head((5., 0.5), (0., 1.)))
    assert rows(plan) == sorted(heads)


PASSES = [
    ('resnet32_cifar10_dgl_hpff_k16.py', 32, 2), ('resnet32_cifar10_infopro_hpff_k16.py', 32, 2),
    ('resnet110_cifar10_infopro_hpff_k55.py', 110, 2),
    ('resnet32_cifar10_dgl_mlaan_k16.py', 32, 3), ('resnet110_cifar10_dgl_mlaan_k55.py', 110, 3),
    ('resnet32_cifar10_infopro_mlaan_k16.py', 32, 3), ('resnet32_cifar10_mlaan_k16.py', 32, 2),
    ('resnet110_cifar10_mlaan_k55.py', 110, 2),
]


@pytest.mark.parametrize('name,depth,k', PASSES)
def test_passes_equal_the_authors_loop(name, depth, k):
    """The stem runs once (y = clone(stem(img))), each segment as often as
    the loop written out in ``authors_runs``: e.g. 2, 3, ..., 3, 2 for k=2
    and 2, 3, 4, ..., 4, 3, 2 for k=3."""
    plan = plan_of(name, depth)
    local = local_cfg(name)
    assert local.get('bn_updates') == 'per-path'
    assert list(plan.passes) == [1] + authors_runs(plan.num_modules - 1, k)
    assert plan.passes[1:4] == ((2, 3, 3) if k == 2 else (2, 3, 4))


def test_passes_without_independent_path_and_without_stem_module():
    """HPFF's ImageNet loop (independent path commented out, §5.4) on a
    split without a stem boundary: E_0 runs on the x path and in window 1,
    every other segment only in its windows."""
    paths = blocks(32)
    bounds = ['backbone.layer1.4', 'backbone.layer2.4', 'backbone.layer3.2']
    plan = build_plan(bounds, dict(method=dict(type='DGL'),
                                      hilo=dict(cascade=2, independent=False)))
    assert list(plan.passes) == authors_runs(4, 2, independent=False) == [2, 2, 2, 1]
    plan = build_plan(bounds, dict(method=dict(type='DGL'),
                                      hilo=dict(cascade=3, first_independent=False)))
    assert list(plan.passes) == authors_runs(4, 3) == [2, 3, 3, 2]
    assert build_plan(paths[:-1], dict(method=dict(type='DGL'))).passes == (1,) * 16


def test_copy_tables_rows_2_and_4():
    paths = blocks(32)
    leaps = leap_blocks(paths[:-1], paths, 32)
    assert [p.split('backbone.')[1] for p in leaps[3]] == ['layer2.0', 'layer3.0', 'layer3.3',
                                                          'layer3.4']
    assert leaps[2][2].endswith('layer3.2') and leaps[5][2].endswith('layer3.3')


def test_infopro_indexing_zeroes_the_last_module_and_is_refused():
    """§2.1 indexing with the HPFF/MLAAN end values (5, 0.5) -> (0, 0): the last
    local module gets lambda = (0, 0); the plan names it and the setting."""
    paths = blocks(32)
    ip = dict(type='InfoPro', recon_weights=(5., 0.), task_weights=(0.5, 0.))
    plan = build_plan(paths[:-1], dict(method=ip))
    with pytest.raises(ValueError, match=r'm15 \(backbone\.layer3\.3\).*r = 1.*InfoPro'):
        plan.check_supervised()
    # the segment indexing of the HPFF/MLAAN code keeps it trained
    build_plan(paths[:-1], dict(method=ip, stem='merged'),
               stem_block=paths.stem).check_supervised()


def test_unreached_module_is_refused():
    paths = blocks(32)
    plan = build_plan(paths[:-1], dict(method=dict(type='DGL'),
                                       hilo=dict(cascade=2, independent=False), stem='merged'),
                      stem_block=paths.stem)
    plan.check_supervised()  # m1, m2 learn through the first cascade (m3)
    plan = build_plan(paths[:-1], dict(method=dict(type='DGL', loss_weight=0.)))
    with pytest.raises(ValueError, match=r'm1 \(backbone\.stem\).*loss weights'):
        plan.check_supervised()


def test_ema_on_an_untrained_head_is_refused():
    paths = blocks(32)
    leaps = leap_blocks(paths[:-1], paths, 32)
    plan = build_plan(paths[:-1], dict(method=dict(type='InfoPro', recon_weights=(5., 0.),
                                                   task_weights=(0.5, 0.)),
                                       hilo=dict(cascade=3), mlaan=dict(ema='last')),
                      leaps=leaps)
    with pytest.raises(ValueError, match='m15'):
        plan.check_supervised()


def test_format_lists_every_module():
    text = plan_of('resnet32_cifar10_infopro_hpff_k16.py', 32).format()
    for m in range(1, 17):
        assert f'| m{m} |' in text
    assert 'local.m3.cascade' in text and 'm1..m3' in text and 'quadrant n=2' in text


def test_stage_schedule_needs_a_stage_and_stays_on_the_schedule():
    """``schedule='stage'`` reads the stage from the boundary path; a head on
    the stem (stem='module') has none, and r > 1 (few segments) would give
    negative weights: both refused with the fix named."""
    paths = blocks(32)
    ip = dict(type='InfoPro', recon_weights=(5., 0.), task_weights=(0.5, 0.))
    with pytest.raises(ValueError, match=r"backbone\.stem.*schedule='index'"):
        build_plan(paths[:-1], dict(method=ip, schedule='stage'))
    with pytest.raises(ValueError, match=r'layer2\.4 at r = 2/1 > 1'):
        build_plan(['backbone.stem', 'backbone.layer2.4', 'backbone.layer3.3'],
                   dict(method=ip, stem='merged', schedule='stage'), stem_block=paths.stem)
    # DGL is not scheduled: any split is fine
    build_plan(paths[:-1], dict(method=dict(type='DGL'), schedule='stage')).check_supervised()


def test_plan_reads_the_schema_defaults():
    """``build_plan`` reads the typed config: ``pff=dict()`` patches with the
    schema's default n (``PFFConfig.patches``), its variant and mode, and a
    dict is parsed by the schema (its errors, not the plan's)."""
    paths = blocks(20)
    plan = build_plan(paths[:-1], dict(method=dict(type='DGL'), pff=dict()))
    default = PFFConfig()
    assert default.patches == 2
    assert {(h.patches, h.pff, h.pff_mode) for h in plan.heads} == {
        (default.patches, default.variant, default.mode)}
    typed = LocalConfig.parse(dict(method=dict(type='DGL'), pff=dict(mode='batched')))
    assert {h.pff_mode for h in build_plan(paths[:-1], typed).heads} == {'batched'}
    with pytest.raises(ValueError, match=r"pff has no key 'patchs'.*'patches'"):
        build_plan(paths[:-1], dict(method=dict(type='DGL'), pff=dict(patchs=2)))
    # the window against K is checked where K is known, once
    with pytest.raises(ValueError, match=r'hilo\.cascade=5 spans more modules than the 4'):
        build_plan(paths[1:4], dict(method=dict(type='DGL'), hilo=dict(cascade=5)))


def test_the_stem_is_the_block_lists_mark_not_a_name():
    """A first boundary is the stem only where the block list marks it: a
    block named ``stem`` that the list does not mark is a block."""
    paths = blocks(32)
    merged = dict(method=dict(type='DGL'), stem='merged')
    assert plan_for(paths[:-1], paths, 32, merged).stem == 'merged'
    plain = list(paths)  # the same names, no mark
    plan = plan_for(plain[:-1], plain, 32, merged)
    assert plan.stem == 'module' and plan.at(0)
    assert build_plan(paths[:-1], merged, stem_block='backbone.stem').at(0) == []
