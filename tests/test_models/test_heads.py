"""Unit tests of every local head: output shapes and one numeric property each."""
import pytest
import torch
import torch.nn as nn

from mmlocal.models.heads.aux_classifiers import (ConvAuxClassifier, DGLMLPSRClassifier,
                                                  ImageNetAuxClassifier, PredSimNet,
                                                  SegAuxClassifier)
from mmlocal.models.heads.decoders import QuadrantReconDecoder, ReconDecoder, UpsampleDecoder
from mmlocal.models.heads.leap_head import LeapAugmentedHead
from mmlocal.models.heads.local_heads import ClassifierHead, InfoProHead, PredSimHead
from mmlocal.structures import LocalHeadProtocol, LocalTargets

B = 4


def _feat(c=16, h=8, w=8, seed=0):
    torch.manual_seed(seed)
    return torch.randn(B, c, h, w)


@pytest.mark.parametrize('arch,convs,fcs', [('0c1f', 0, 1), ('1c2f', 1, 2), ('2c2f', 2, 2),
                                             ('1c3f', 1, 3)])
def test_conv_aux_classifier_archs(arch, convs, fcs):
    head = ConvAuxClassifier(16, 10, arch=arch)
    assert len(head.convs) == convs
    assert sum(isinstance(m, nn.Linear) for m in head.fcs) == fcs
    assert head(_feat()).shape == (B, 10)
    if convs:  # below 64 channels the first conv doubles the width and halves the map
        assert head.convs[0][0].out_channels == 32 and head.convs[0][0].stride == (2, 2)


def test_conv_aux_classifier_is_translation_invariant_without_convs():
    """0c1f is GAP + FC: a spatial permutation of the map changes nothing."""
    head = ConvAuxClassifier(16, 10, arch='0c1f')
    x = _feat()
    torch.testing.assert_close(head(x), head(x.flip(-1).flip(-2)))


def test_dgl_mlp_sr_classifier():
    head = DGLMLPSRClassifier(16, 10).eval()
    assert head(_feat(h=9, w=9)).shape == (B, 10)
    assert head.fc.in_features == 4 * 16  # pooled to 2x2


def test_imagenet_aux_classifier():
    head = ImageNetAuxClassifier(256, 7)
    assert head(_feat(256, 14, 14)).shape == (B, 7)
    assert [m[0].out_channels for m in head.convs] == [128, 256, 512, 2048]


def test_seg_aux_classifier_is_dense_and_local():
    """Dense logits at the feature's size; a 3x3 conv then 1x1: a pixel's
    logits depend only on its 3x3 neighbourhood."""
    head = SegAuxClassifier(16, 5).eval()
    x = _feat()
    out = head(x)
    assert out.shape == (B, 5, 8, 8)
    y = x.clone()
    y[..., 6:, 6:] += 1.  # far from pixel (0, 0)
    torch.testing.assert_close(head(y)[..., 0, 0], out[..., 0, 0])


def test_predsim_net_pools_to_the_decoder_size_and_starts_at_zero():
    net = PredSimNet(16, 10, dim_in_decoder=256, spatial=(8, 8))
    assert 16 * net.pool_out[0] * net.pool_out[1] <= 256
    logits, sim = net(_feat())
    assert logits.shape == (B, 10) and sim.shape == (B, 16)
    assert torch.count_nonzero(logits) == 0  # zero-initialised predictor


@pytest.mark.parametrize('decoder', [ReconDecoder(16), UpsampleDecoder(16),
                                     QuadrantReconDecoder(16, patches=2)])
def test_decoders_reconstruct_in_unit_range_at_the_target_size(decoder):
    out = decoder(_feat(), (32, 30))
    assert out.shape == (B, 3, 32, 30)
    assert out.min() >= 0 and out.max() <= 1


def test_quadrant_decoder_quadrants_are_independent():
    """Each quadrant of the image is decoded from its own quadrant of the map."""
    dec = QuadrantReconDecoder(16, patches=2).eval()
    x = _feat()
    y = x.clone()
    y[..., 4:, 4:] += 1.  # bottom-right quadrant only
    a, b = dec(x, (32, 32)), dec(y, (32, 32))
    torch.testing.assert_close(a[..., :16, :], b[..., :16, :])
    assert not torch.allclose(a[..., 16:, 16:], b[..., 16:, 16:])


def _targets(labels=None, seg=None, image=None):
    inputs = image if image is not None else torch.rand(B, 3, 32, 32) * 255
    return LocalTargets(inputs=inputs, labels=labels, seg=seg)


def test_classifier_head_loss_is_cross_entropy():
    head = ClassifierHead(16, 10, dict(type='ConvAuxClassifier', arch='0c1f'))
    assert isinstance(head, LocalHeadProtocol)
    labels = torch.tensor([0, 1, 2, 3])
    preds = head(_feat(), (32, 32))
    loss = head.loss(preds, _targets(labels=labels))
    torch.testing.assert_close(loss['loss_cls'],
                               nn.functional.cross_entropy(preds['logits'], labels))


def test_classifier_head_dense_upsamples_to_the_label():
    head = ClassifierHead(16, 5, dict(type='SegAuxClassifier'), dense=True)
    preds = head(_feat(), (32, 32))
    assert preds['logits'].shape == (B, 5, 32, 32)
    seg = torch.full((B, 32, 32), 255, dtype=torch.long)  # all ignored ...
    seg[:, 0, 0] = 1  # ... but one pixel per image
    loss = head.loss(preds, _targets(seg=seg))['loss_seg']
    want = nn.functional.cross_entropy(preds['logits'][:, :, 0, 0], seg[:, 0, 0])
    torch.testing.assert_close(loss, want)


def test_infopro_head_weights_its_two_terms():
    torch.manual_seed(0)
    head = InfoProHead(16, 10, dict(type='ConvAuxClassifier', arch='1c2f'),
                       dict(type='ReconDecoder'), recon_weight=5., task_weight=0.5)
    labels = torch.tensor([0, 1, 2, 3])
    image = torch.rand(B, 3, 32, 32) * 255
    preds = head(_feat(), (32, 32))
    assert preds['recon'].shape == (B, 3, 32, 32)
    losses = head.loss(preds, _targets(labels=labels, image=image))
    bce = nn.functional.binary_cross_entropy(preds['recon'], image / 255.)
    torch.testing.assert_close(losses['loss_recon'], 5. * bce)
    torch.testing.assert_close(losses['loss_cls'],
                               0.5 * nn.functional.cross_entropy(preds['logits'], labels))


def test_predsim_head_terms_sum_to_the_beta_mixture():
    head = PredSimHead(16, 10, beta=0.99, spatial=(8, 8))
    labels = torch.tensor([0, 1, 1, 3])
    losses = head.loss(head(_feat(), (32, 32)), _targets(labels=labels))
    assert set(losses) == {'loss_pred', 'loss_sim'}
    # zero-initialised predictor: CE = log(10), weighted 1 - beta
    torch.testing.assert_close(losses['loss_pred'], torch.tensor(0.01 * torch.log(torch.tensor(10.)).item()))


def test_leap_augmented_head_copies_sync_and_ema():
    """The trainable copies and the frozen EMA copy start as the live blocks;
    the EMA follows E <- r E + (1 - r) live."""
    torch.manual_seed(0)
    live = [nn.Conv2d(16, 16, 3, padding=1), nn.Conv2d(16, 16, 3, padding=1)]
    inner = ClassifierHead(16, 10, dict(type='ConvAuxClassifier', arch='0c1f'))
    head = LeapAugmentedHead(blocks=live, sources=['a', 'b'], head=inner, momentum=0.9)
    head.sync_from(live)
    assert bool(head.synced)
    assert all(not p.requires_grad for p in head.ema.parameters())
    before = [p.clone() for p in head.ema.parameters()]
    with torch.no_grad():
        for p in live[0].parameters():
            p.add_(1.)
    head.update_ema(live[0])
    for old, new, cur in zip(before, head.ema.parameters(), live[0].parameters()):
        torch.testing.assert_close(new, 0.9 * old + 0.1 * cur)
    out = head(_feat(), (32, 32))
    assert out['logits'].shape == (B, 10)


def test_reconstruction_bce_runs_outside_autocast():
    """CUDA autocast refuses binary_cross_entropy (InfoPro under AMP failed on
    the H200): the reconstruction BCE runs with autocast off, in fp32. CPU
    autocast does not refuse it, so the autocast state at the call is read
    off torch's function dispatch."""
    from torch.overrides import TorchFunctionMode

    seen = []

    class Watch(TorchFunctionMode):
        def __torch_function__(self, func, types, args=(), kwargs=None):
            if func is nn.functional.binary_cross_entropy:
                seen.append((torch.is_autocast_enabled('cpu'), args[0].dtype))
            return func(*args, **(kwargs or {}))

    torch.manual_seed(0)
    head = InfoProHead(16, 10, dict(type='ConvAuxClassifier', arch='1c2f'),
                       dict(type='ReconDecoder'), recon_weight=1., task_weight=1.)
    targets = _targets(labels=torch.tensor([0, 1, 2, 3]), image=torch.rand(B, 3, 32, 32) * 255)
    with torch.autocast('cpu', dtype=torch.bfloat16):
        preds = head(_feat(), (32, 32))
        assert preds['recon'].dtype == torch.bfloat16  # the decoder ran in autocast
        with Watch():
            loss = head.loss(preds, targets)['loss_recon']
    assert seen == [(False, torch.float32)]
    assert loss.dtype == torch.float32
