"""Local heads for ViT token grids: shapes on any grid (PFF patches down to
one token), the patch decoder's token-to-pixel layout, the engine's default
choice for token features, and PFF over the token grid."""
import pytest
import torch

from mmlocal.local.head_runner import patch_slices, run_head_patched
from mmlocal.local.methods import FeatureInfo, TaskInfo, default_classifier, default_decoder
from mmlocal.local.targets import LocalTargets
from mmlocal.models.heads import PatchReconDecoder, TokenMLPClassifier, ViTAuxClassifier
from mmlocal.registry import MODELS


@pytest.mark.parametrize('grid', [(14, 14), (7, 7), (2, 2), (1, 1), (3, 5)])
def test_vit_aux_classifier_any_grid(grid):
    torch.manual_seed(0)
    head = ViTAuxClassifier(in_channels=64, num_classes=10)
    assert head.reduce.stride == (2, 2) and len(head.layers.layers) == 3
    x = torch.randn(2, 64, *grid, requires_grad=True)
    out = head(x)
    assert out.shape == (2, 10)
    out.sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all()


def test_vit_aux_classifier_widths():
    head = ViTAuxClassifier(in_channels=768, num_classes=10)
    assert head.reduce.out_channels == 384  # the DeiT-S width of the journal's heads
    assert head.layers.layers[0].self_attn.num_heads == 6
    with pytest.raises(ValueError, match='not divisible by num_heads'):
        ViTAuxClassifier(in_channels=64, num_classes=10, embed_dims=100, num_heads=3)


def test_token_mlp_classifier():
    head = TokenMLPClassifier(in_channels=32, num_classes=5, hidden=16, num_layers=3)
    assert [m.out_features for m in head.mlp if isinstance(m, torch.nn.Linear)] == [16, 16, 5]
    x = torch.randn(3, 32, 2, 2)
    out = head(x)
    assert out.shape == (3, 5)
    # it sees the average token: permuting tokens changes nothing
    perm = x.flatten(2)[..., torch.tensor([3, 1, 0, 2])].reshape(3, 32, 2, 2)
    torch.testing.assert_close(head(perm), out)
    with pytest.raises(ValueError, match='num_layers >= 1'):
        TokenMLPClassifier(in_channels=32, num_classes=5, num_layers=0)


def test_patch_decoder_token_owns_its_patch():
    """Token (i, j) decodes exactly the pixels of patch (i, j)."""
    torch.manual_seed(0)
    p = 4
    dec = PatchReconDecoder(in_channels=8, patch_size=p)
    x = torch.randn(1, 8, 3, 2)
    out = dec(x, (3 * p, 2 * p))
    assert out.shape == (1, 3, 12, 8)
    assert ((out > 0) & (out < 1)).all()
    x2 = x.clone()
    x2[0, :, 1, 0] = torch.randn(8)  # change token (1, 0) only
    diff = (dec(x2, (12, 8)) - out).abs().sum(dim=(0, 1)) > 0
    want = torch.zeros(12, 8, dtype=torch.bool)
    want[p:2 * p, 0:p] = True
    assert torch.equal(diff, want)
    # another region size (input size other than the probe's): resized
    assert dec(x, (10, 10)).shape == (1, 3, 10, 10)


def test_defaults_for_token_features():
    task = TaskInfo('classification', 10)
    tokens = FeatureInfo(768, (14, 14), stride=16, tokens=True)
    assert default_classifier(task, tokens) == dict(type='ViTAuxClassifier')
    assert default_decoder(task, tokens) == dict(type='PatchReconDecoder', patch_size=16)
    # ConvNet features keep their heads
    assert default_classifier(task, FeatureInfo(1024, (14, 14)))['type'] == 'ImageNetAuxClassifier'
    assert default_decoder(task, FeatureInfo(1024, (14, 14)))['type'] == 'UpsampleDecoder'
    head = MODELS.build(dict(
        type='InfoProHead', in_channels=768, num_classes=10,
        classifier=default_classifier(task, tokens), decoder=default_decoder(task, tokens),
        recon_weight=5., task_weight=0.5))
    preds = head(torch.randn(2, 768, 2, 2), (32, 32))
    assert preds['logits'].shape == (2, 10) and preds['recon'].shape == (2, 3, 32, 32)


def _explicit_pff(head, feat, targets, n, out_size):
    """The paper's formula as a plain loop with one graph."""
    rows = patch_slices(feat.shape[-2], n, out_size[0])
    cols = patch_slices(feat.shape[-1], n, out_size[1])
    preds = [(r, head(feat[..., r[0], c[0]], (r[1].stop - r[1].start, c[1].stop - c[1].start)))
             for r in rows for c in cols]
    fused = {}
    for name in preds[0][1]:
        if head.FUSION[name] == 'tile':
            fused[name] = torch.cat([torch.cat([p[name] for (r, p) in preds if r == row], -1)
                                     for row in rows], -2)
        else:
            fused[name] = torch.stack([p[name] for _, p in preds]).mean(0)
    return sum(head.loss(fused, targets).values())


@pytest.mark.parametrize('classifier', ['ViTAuxClassifier', 'TokenMLPClassifier'])
def test_pff_over_token_grid_equals_explicit_loop(classifier):
    torch.manual_seed(0)
    head = MODELS.build(dict(
        type='InfoProHead', in_channels=32, num_classes=10,
        classifier=dict(type=classifier, embed_dims=64) if classifier == 'ViTAuxClassifier'
        else dict(type=classifier),
        decoder=dict(type='PatchReconDecoder', patch_size=4), recon_weight=5.,
        task_weight=0.5))
    grid, out_size = (5, 4), (20, 16)
    g = torch.Generator().manual_seed(0)
    targets = LocalTargets(inputs=torch.rand(3, 3, *out_size, generator=g) * 255,
                           labels=torch.tensor([1, 4, 9]))
    feat = torch.randn(3, 32, *grid, requires_grad=True)
    loss = _explicit_pff(head, feat, targets, 2, out_size)
    loss.backward()
    want_feat = feat.grad.clone()
    want = {k: p.grad.clone() for k, p in head.named_parameters()}
    head.zero_grad()
    feat.grad = None
    losses = run_head_patched(head, feat, targets, out_size, 1.0, lambda l: l.backward(), 2)
    torch.testing.assert_close(sum(losses.values()), loss.detach())
    torch.testing.assert_close(feat.grad, want_feat, rtol=1e-4, atol=1e-7)
    for k, p in head.named_parameters():
        torch.testing.assert_close(p.grad, want[k], rtol=1e-4, atol=1e-7, msg=k)
