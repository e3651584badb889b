"""``local.bn_updates='per-path'``: BN running statistics after one real step
equal an independent simulation of the authors' loop, which runs each block
once per forward path that contains it (HPFF's ``resnetInfoPro_HPFF.py``,
ALGORITHMS.md §5.2; MLAAN's ``resnetDGLbin.py``, §6.3): the stem once, the x
path through every segment, every cascade window again on the y path."""
import copy

import pytest
import torch
import torch.nn as nn

from mmlocal.local import LocalConfigError, LocalLearner
from mmlocal.testing import build_classifier, build_local, cifar_batch


@torch.no_grad()
def authors_loop(model, inputs, k):
    """The authors' training forward, BN side effects only: x = stem(img),
    y = clone(x); for i = 0..S-2: x = E_i(x); from i = k-1 on the window
    E_{i-k+1}..E_i runs on y, and y moves to E_{i-k+1}'s output; finally
    x = E_{S-1}(x) and the last window E_{S-k}..E_{S-1} on y. One block per
    segment (the K = blocks + 1 split with the stem merged)."""
    bb = model.backbone
    segs = [blk for layer in (bb.layer1, bb.layer2, bb.layer3) for blk in layer]
    s = len(segs)
    x = bb.stem(inputs)
    y = x.clone()
    for i in range(s - 1):
        x = segs[i](x)
        if i >= k - 1:
            y_next = segs[i - k + 1](y)
            z = y_next
            for j in range(i - k + 2, i + 1):
                z = segs[j](z)
            y = y_next
    segs[-1](x)
    z = y
    for j in range(s - k, s):
        z = segs[j](z)


def _bn_stats(model):
    return {n: b.clone() for n, b in model.backbone.named_buffers()
            if n.endswith(('running_mean', 'running_var'))}


CASES = {
    'hilo_k2': dict(hilo=dict(cascade=2, first_independent=False)),
    'mlaan_k3': dict(hilo=dict(cascade=3, first_independent=False, task_cascade_weight=1.0),
                     mlaan=dict(momentum=0.9, ema='last')),
}


@pytest.mark.parametrize('case', sorted(CASES))
def test_running_stats_equal_the_authors_loop(case):
    model = build_classifier(depth=20)
    k = CASES[case]['hilo']['cascade']
    local = dict(num_modules=10, stem='merged', method=dict(type='DGL'), probe_size=(32, 32),
                 bn_updates='per-path', **CASES[case])
    wrapper = build_local(model, local)
    model.train()
    data = cifar_batch(8)
    inputs = model.data_preprocessor(copy.deepcopy(data), True)['inputs']
    reference = copy.deepcopy(model)
    for m in reference.modules():  # the authors' layers keep PyTorch's momentum
        if isinstance(m, nn.BatchNorm2d):
            m.momentum = 0.1
    authors_loop(reference, inputs, k)
    model.train_step(data, wrapper)
    want, got = _bn_stats(reference), _bn_stats(model)
    assert len(want) == 2 * (2 * 9 + 1 + 2)  # mean, var of two per block, the stem, 2 shortcuts
    for n, w in want.items():
        torch.testing.assert_close(got[n], w, rtol=1e-5, atol=1e-6, msg=n)
    # one update per step would differ everywhere but in the stem
    single = copy.deepcopy(model)
    single.load_state_dict(build_classifier(depth=20).state_dict())
    with torch.no_grad():
        for m in single.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.momentum = 0.1
        single.backbone(inputs)
    differ = {n for n, w in _bn_stats(single).items() if not torch.allclose(w, want[n])}
    assert differ == {n for n in want if not n.startswith('stem.')}


def test_once_is_one_update_and_momentum_restored_on_remove():
    model = build_classifier(depth=20)
    before = {n: m.momentum for n, m in model.named_modules() if isinstance(m, nn.BatchNorm2d)}
    wrapper = build_local(model, dict(num_modules=10, stem='merged', method=dict(type='DGL'),
                                      probe_size=(32, 32), hilo=dict(cascade=2),
                                      bn_updates='per-path'))
    learner = LocalLearner.of(model)
    bn = model.backbone.layer2[1].bn1
    assert bn.momentum == pytest.approx(1 - 0.9 ** 3)
    assert all(m.momentum == 0.1 for m in model.backbone.stem.modules()
               if isinstance(m, nn.BatchNorm2d))
    # leap copies and heads are not the live blocks: their BNs keep 0.1
    assert all(m.momentum == 0.1 for m in learner.modules() if isinstance(m, nn.BatchNorm2d))
    learner.remove()
    assert {n: m.momentum for n, m in model.named_modules()
            if isinstance(m, nn.BatchNorm2d)} == before
    # default 'once': the model's forward updates every BN once
    model = build_classifier(depth=20)
    wrapper = build_local(model, dict(num_modules=10, stem='merged', method=dict(type='DGL'),
                                      probe_size=(32, 32), hilo=dict(cascade=2)))
    data = cifar_batch(8)
    inputs = model.data_preprocessor(copy.deepcopy(data), True)['inputs']
    reference = copy.deepcopy(model)
    with torch.no_grad():
        reference.backbone(inputs)
    model.train_step(data, wrapper)
    for n, w in _bn_stats(reference).items():
        torch.testing.assert_close(_bn_stats(model)[n], w, rtol=1e-5, atol=1e-6, msg=n)


def test_momentum_none_is_refused():
    model = build_classifier(depth=20)
    model.backbone.layer2[1].bn2.momentum = None
    with pytest.raises(LocalConfigError, match=r'layer2\.1\.bn2.*momentum=None.*bn_updates'):
        build_local(model, dict(num_modules=10, stem='merged', method=dict(type='DGL'),
                                probe_size=(32, 32), hilo=dict(cascade=2),
                                bn_updates='per-path'))


def test_unknown_value_is_refused():
    with pytest.raises(LocalConfigError, match="bn_updates must be one of.*'per-path'"):
        build_local(build_classifier(depth=20), dict(num_modules=4, bn_updates='twice'))
