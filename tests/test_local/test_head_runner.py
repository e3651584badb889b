"""Running a local head: the plain path (``run_head``) and patch feature
fusion (``run_head_patched``), which equals an explicit loop over patches."""
import pytest
import torch

from mmlocal.local.head_runner import (check_patch_grid, patch_slices,
                                       run_head, run_head_patched)
from mmlocal.local.targets import LocalTargets
from mmlocal.registry import MODELS


def _head(kind):
    torch.manual_seed(0)
    if kind == 'dgl':
        return MODELS.build(dict(type='ClassifierHead', in_channels=16, num_classes=10,
                                 classifier=dict(type='ConvAuxClassifier', arch='2c2f')))
    if kind == 'infopro':
        return MODELS.build(dict(type='InfoProHead', in_channels=16, num_classes=10,
                                 classifier=dict(type='ConvAuxClassifier', arch='1c2f'),
                                 decoder=dict(type='ReconDecoder'), recon_weight=5.,
                                 task_weight=0.5))
    return MODELS.build(dict(type='ClassifierHead', in_channels=16, num_classes=19,
                             classifier=dict(type='SegAuxClassifier', channels=32,
                                             dropout=0.1), dense=True))


def _targets(img_size):
    g = torch.Generator().manual_seed(0)
    inputs = torch.rand(4, 3, *img_size, generator=g) * 255
    return LocalTargets(inputs=inputs, labels=torch.tensor([0, 3, 3, 7]),
                        seg=torch.randint(0, 19, (4, *img_size), generator=g))


def explicit(head, feat, targets, n, out_size):
    """The paper's formula written as a plain loop with one graph."""
    rows = patch_slices(feat.shape[-2], n, out_size[0])
    cols = patch_slices(feat.shape[-1], n, out_size[1])
    preds = [(r, c, head(feat[..., r[0], c[0]], (r[1].stop - r[1].start, c[1].stop - c[1].start)))
             for r in rows for c in cols]
    fused = {}
    for name in preds[0][2]:
        if head.FUSION[name] == 'tile':
            fused[name] = torch.cat([torch.cat([p[name] for (r, c, p) in preds if r == row], -1)
                                     for row in rows], -2)
        else:
            fused[name] = torch.stack([p[name] for _, _, p in preds]).mean(0)
    return sum(head.loss(fused, targets).values())


@pytest.mark.parametrize('mode', ['sequential', 'batched'])
@pytest.mark.parametrize('kind,n,size', [('dgl', 2, (8, 8)), ('infopro', 2, (9, 7)),
                                         ('infopro', 2, (8, 8)), ('infopro', 3, (8, 8)),
                                         ('seg', 2, (6, 10))])
def test_pff_equals_explicit_loop(kind, n, size, mode):
    """Both modes; grids that do not divide the map run sequentially in
    'batched' mode. The batched mode draws its own dropout masks, so the
    segmentation head's dropout is off there."""
    head = _head(kind)
    if mode == 'batched':
        for m in head.modules():
            if isinstance(m, torch.nn.Dropout2d):
                m.p = 0.
    out_size = (size[0] * 4, size[1] * 4)
    targets = _targets(out_size)
    feat = torch.randn(4, 16, *size, requires_grad=True)
    state = {k: v.clone() for k, v in head.state_dict().items()}
    torch.manual_seed(1)
    loss = explicit(head, feat, targets, n, out_size)
    loss.backward()
    want_feat = feat.grad.clone()
    want = {k: p.grad.clone() for k, p in head.named_parameters()}
    want_state = {k: v.clone() for k, v in head.state_dict().items()}
    head.load_state_dict(state)
    head.zero_grad()
    feat.grad = None
    torch.manual_seed(1)
    losses = run_head_patched(head, feat, targets, out_size, 1.0, lambda l: l.backward(), n,
                              mode)
    torch.testing.assert_close(sum(losses.values()), loss.detach())
    torch.testing.assert_close(feat.grad, want_feat, rtol=1e-4, atol=1e-7)
    for k, p in head.named_parameters():
        torch.testing.assert_close(p.grad, want[k], rtol=1e-4, atol=1e-7, msg=k)
    for k, v in head.state_dict().items():  # BN statistics updated once per patch, as the loop
        torch.testing.assert_close(v, want_state[k], msg=k)


def test_patch_grid_too_large_runtime():
    head = _head('dgl')
    feat = torch.randn(2, 16, 3, 3, requires_grad=True)
    with pytest.raises(ValueError, match='PFF patch grid 4x4 is larger than the 3x3'):
        run_head_patched(head, feat, _targets((12, 12)), (12, 12), 1.0, lambda l: l.backward(), 4)


def test_authors_quadrant_decoder_sums_quadrant_losses():
    """The HPFF CIFAR code's variant: one decoder per quadrant, the quadrant
    BCEs summed; checked against an explicit per-quadrant computation."""
    import torch.nn.functional as F
    torch.manual_seed(0)
    head = MODELS.build(dict(type='InfoProHead', in_channels=16, num_classes=10,
                             classifier=dict(type='ConvAuxClassifier', arch='1c2f'),
                             decoder=dict(type='QuadrantReconDecoder', patches=2),
                             recon_weight=1., task_weight=0.))
    assert len(head.decoder.decoders) == 4
    targets = _targets((32, 32))
    feat = torch.randn(4, 16, 9, 7)
    loss = head.loss(head(feat, (32, 32)), targets)['loss_recon']
    want = 0
    for i, (r0, r1, o0, o1) in enumerate([(0, 4, 0, 16), (4, 9, 16, 32)]):
        for j, (c0, c1, p0, p1) in enumerate([(0, 3, 0, 16), (3, 7, 16, 32)]):
            rec = head.decoder.decoders[i * 2 + j](feat[..., r0:r1, c0:c1], (o1 - o0, p1 - p0))
            want = want + F.binary_cross_entropy(rec, targets.image01[..., o0:o1, p0:p1])
    torch.testing.assert_close(loss, want)


def test_pff_saves_head_memory_measured_with_cpu_tracker():
    """Head activation memory (CPU allocator events) falls with the patch
    grid: the second pass holds one patch's graph at a time."""
    from mmlocal.apis import head_peak_memory as head_peak
    head = {}
    for n in (1, 2, 4):
        total, feat_grad = head_peak('InfoPro', '2c2f', 16, (32, 32), (32, 32), 64, n)
        head[n] = total - feat_grad
    # measured: 23.8 / 9.1 / 3.5 MB, and 19.8 / 8.9 / 3.5 MB since decoders skip
    # the resize of a map to its own size (the unpatched head's 4 MB copy)
    assert head[2] < 0.5 * head[1]
    assert head[4] < 0.6 * head[2]


@pytest.mark.parametrize('mode', ['sequential', 'batched'])
def test_pff_gradient_reaches_the_leaf_behind_a_view(mode):
    """ViT features reach the heads as a reshaped view of the token leaf:
    PFF's gradient must flow back through that view."""
    head = _head('dgl')
    targets = _targets((32, 32))
    tokens = torch.randn(4, 64, 16, requires_grad=True)  # (B, N, C), an 8x8 grid
    view = tokens.transpose(1, 2).reshape(4, 16, 8, 8)
    state = {k: v.clone() for k, v in head.state_dict().items()}
    explicit(head, view, targets, 2, (32, 32)).backward()
    want = tokens.grad.clone()
    head.load_state_dict(state)
    tokens.grad = None
    view = tokens.transpose(1, 2).reshape(4, 16, 8, 8)
    run_head_patched(head, view, targets, (32, 32), 1.0, lambda l: l.backward(), 2, mode)
    torch.testing.assert_close(tokens.grad, want, rtol=1e-4, atol=1e-7)


def test_run_head_backpropagates_the_weighted_sum_and_returns_the_losses():
    """One backward of weight x (sum of the head's losses); the returned
    losses are the unweighted terms, detached."""
    head, targets = _head('infopro'), _targets((8, 8))
    feat = torch.randn(4, 16, 8, 8, requires_grad=True)
    seen = []

    def backward(loss):
        seen.append(loss.detach())
        loss.backward()

    losses = run_head(head, feat, targets, (8, 8), 0.25, backward)
    assert set(losses) == {'loss_cls', 'loss_recon'} and not any(
        v.requires_grad for v in losses.values())
    want = head.loss(head(feat.detach(), (8, 8)), targets)
    torch.testing.assert_close(losses['loss_recon'], want['loss_recon'])
    torch.testing.assert_close(seen[0], 0.25 * sum(want.values()))
    ref = feat.detach().clone().requires_grad_()
    (0.25 * sum(head.loss(head(ref, (8, 8)), targets).values())).backward()
    torch.testing.assert_close(feat.grad, ref.grad)


@pytest.mark.parametrize('size, n, out', [(8, 2, 32), (9, 2, 36), (7, 3, 28), (5, 5, 5)])
def test_patch_slices_cover_the_map_in_near_equal_pieces(size, n, out):
    pieces = patch_slices(size, n, out)
    assert len(pieces) == n
    assert pieces[0][0].start == 0 and pieces[-1][0].stop == size
    assert pieces[0][1].start == 0 and pieces[-1][1].stop == out
    for (f, o), (f2, o2) in zip(pieces, pieces[1:]):
        assert f.stop == f2.start and o.stop == o2.start
    lengths = [f.stop - f.start for f, _ in pieces]
    assert max(lengths) - min(lengths) <= 1
    for f, o in pieces:  # the output slice covers the feature slice's region
        assert o.start == round(f.start * out / size) and o.stop == round(f.stop * out / size)


def test_patch_grid_larger_than_the_map_is_refused():
    with pytest.raises(ValueError, match='use pff.patches <= 3'):
        check_patch_grid(4, (3, 5), 'backbone.layer3.0')
    check_patch_grid(3, (3, 5), 'backbone.layer3.0')


def test_batched_mode_is_one_call_per_layer():
    """'batched' runs each convolution of the head once over all patches
    (n^2 x B images), forward and backward; 'sequential' 2 n^2 times."""
    from mmlocal.apis import OpCounter
    head = _head('dgl')
    targets = _targets((32, 32))
    counts = {}
    for mode in ('sequential', 'batched'):
        feat = torch.randn(4, 16, 8, 8, requires_grad=True)
        with OpCounter() as ops:
            run_head_patched(head, feat, targets, (32, 32), 1.0, lambda l: l.backward(), 2, mode)
        counts[mode] = ops.by_op
    assert counts['batched']['aten.convolution.default'] == 2  # 2c2f: two convs
    assert counts['sequential']['aten.convolution.default'] == 2 * 2 * 4
    assert counts['batched']['aten.convolution_backward.default'] == 2


def test_pff_mode_checked():
    from mmlocal.local.config import LocalConfig, LocalConfigError
    with pytest.raises(LocalConfigError, match="pff.mode must be one of.*'batched'"):
        LocalConfig.parse(dict(num_modules=2, pff=dict(patches=2, mode='parallel')))
    assert LocalConfig.parse(dict(num_modules=2, pff=dict(mode='batched'))).pff.mode == 'batched'
