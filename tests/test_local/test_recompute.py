"""Window recomputation (``local.recompute``): a HiLo/MLAAN module keeps only
its input and re-runs its blocks for the VJPs through it. The gradients and
BatchNorm running statistics must equal those of the retained-graph path,
with dropout masks replayed (ViT), PFF heads and MLAAN copies."""
import os.path as osp

import pytest
import torch
from mmengine.config import Config

from mmlocal.testing import build_classifier, build_local, cifar_batch, local_step_grads
from mmlocal.local import LocalLearner
from mmlocal.local.config import LocalConfig, LocalConfigError

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


def _pair(build, local: dict):
    """The same model and heads twice: recomputation off and on."""
    out = []
    for mode in (False, True):
        model = build()
        wrapper = build_local(model, dict(local, recompute=mode))
        out.append((model, wrapper))
    LocalLearner.of(out[1][0]).load_state_dict(LocalLearner.of(out[0][0]).state_dict())
    return out


def _step(model, wrapper, data, seed=0):
    torch.manual_seed(seed)
    graphs = {}

    def grab(module, args, output):  # the graphs kept when the backbone returns
        step = LocalLearner.of(model).current_step
        graphs['kept'] = step.router.graphs
        graphs['open'] = sorted(step.router.pending)
        graphs['recomputable'] = sorted(
            m for m in range(1, LocalLearner.of(model).num_modules - 1)
            if step.recompute is not None and step.recompute.can(m))
        graphs['broken'] = sorted(step.recompute.broken) if step.recompute is not None else []
    h = model.backbone.register_forward_hook(grab)
    try:
        grads = local_step_grads(model, wrapper, data)
    finally:
        h.remove()
    buffers = {n: b.clone() for n, b in model.named_buffers()}
    return grads, buffers, graphs


def _assert_same(off, on):
    (g_off, b_off, _), (g_on, b_on, _) = off, on
    assert set(g_off) == set(g_on)
    for n, g in g_off.items():
        scale = g.abs().max().item()
        torch.testing.assert_close(g_on[n], g, rtol=1e-5, atol=1e-6 * scale + 1e-12, msg=n)
    for n, b in b_off.items():
        torch.testing.assert_close(b_on[n], b, rtol=0, atol=0, msg=n)


@pytest.mark.parametrize('local', [
    dict(method=dict(type='DGL'), hilo=dict(cascade=2)),
    dict(method=dict(type='DGL'), hilo=dict(cascade=2), pff=dict(patches=2)),
    dict(method=dict(type='InfoPro'), hilo=dict(cascade=3)),
    dict(method=dict(type='DGL'), hilo=dict(cascade=3), mlaan=dict(momentum=0.9)),
], ids=['hilo-k2', 'hpff-k2', 'infopro-hilo-k3', 'mlaan-k3'])
def test_recompute_equals_retained_graphs(local):
    local = dict(local, num_modules=5, probe_size=(32, 32))
    (m_off, w_off), (m_on, w_on) = _pair(lambda: build_classifier(depth=20), local)
    data = m_off.data_preprocessor(cifar_batch(8), True)
    off, on = _step(m_off, w_off, data), _step(m_on, w_on, data)
    _assert_same(off, on)
    k = local['hilo']['cascade']
    # off: the window's graphs are kept; on: every middle module is re-run, none kept
    assert off[2]['kept'] == list(range(4 - k + 1, 4)) and off[2]['recomputable'] == []
    assert on[2]['recomputable'] == [1, 2, 3] and on[2]['kept'] == []
    assert on[2]['open'] == off[2]['open']
    # the next step (BN statistics moved once per step) still agrees
    _assert_same(_step(m_off, w_off, data, seed=1), _step(m_on, w_on, data, seed=1))


def _vit(drop: float):
    from mmengine.registry import init_default_scope
    from mmpretrain.registry import MODELS
    cfg = Config.fromfile(osp.join(ROOT, 'configs', 'vit-b16_cifar10_dgl_hpff_k12.py'))
    init_default_scope('mmpretrain')
    cfg.model.backbone.update(arch='deit-tiny', img_size=32, drop_rate=drop,
                              drop_path_rate=drop)
    cfg.model.head.update(in_channels=192)
    cfg.model.setdefault('data_preprocessor', cfg.data_preprocessor)
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    model.init_weights()
    for p in model.head.parameters():
        torch.nn.init.normal_(p, std=0.02)
    return model, dict(cfg.optim_wrapper.local)


def test_recompute_replays_vit_dropout():
    """DeiT-tiny with dropout and drop-path 0.3, DGL+HPFF K=12: the masks of
    the recomputed layers are the original ones (the RNG state is replayed
    and restored), so the gradients are the retained-graph path's."""
    local = _vit(0.3)[1]
    (m_off, w_off), (m_on, w_on) = _pair(lambda: _vit(0.3)[0], local)
    data = m_off.data_preprocessor(cifar_batch(4), True)
    off, on = _step(m_off, w_off, data), _step(m_on, w_on, data)
    assert on[2]['recomputable'] == list(range(1, 11))
    _assert_same(off, on)
    # without the replay the masks differ: the check above can fail
    (_, _, _), (g_other, _, _) = off, _step(m_off, w_off, data, seed=5)
    assert any(not torch.allclose(g_other[n], g) for n, g in off[0].items())


def test_blocks_out_of_sequence_refused_or_kept():
    """Something running between two blocks (here a hook replacing a
    block's output) makes a module impossible to re-run block by block:
    recompute=True refuses it, 'auto' keeps that module's graph."""
    local = dict(num_modules=5, method=dict(type='DGL'), probe_size=(32, 32),
                 hilo=dict(cascade=2))
    data = None
    results = {}
    for mode in (False, 'auto', True):
        model = build_classifier(depth=20)
        wrapper = build_local(model, dict(local, recompute=mode))
        if mode is not False:
            LocalLearner.of(model).load_state_dict(results[False][3])
        model.backbone.layer1[2].register_forward_hook(lambda m, a, o: o + 0)
        data = data or model.data_preprocessor(cifar_batch(8), True)
        if mode is True:
            with pytest.raises(RuntimeError, match='cannot re-run local module m2'):
                _step(model, wrapper, data)
            continue
        results[mode] = _step(model, wrapper, data) + (LocalLearner.of(model).state_dict(),)
    assert results['auto'][2]['recomputable'] == [2, 3]
    assert results['auto'][2]['broken'] == [1]  # m2 = layer1.2, layer2.0: keeps its graph
    _assert_same(results[False][:3], results['auto'][:3])


def test_recompute_option_checked():
    assert LocalConfig.parse(dict(num_modules=4)).recompute == 'auto'
    for bad in ('yes', 1, None):
        with pytest.raises(LocalConfigError, match="recompute must be True, False or 'auto'"):
            LocalConfig.parse(dict(num_modules=4, recompute=bad))
