"""Heads added for the authors' code variants (ALGORITHMS.md §3, §5.3, §5.4,
§6.5): their layers and the sizes they pass through."""
import torch
import torch.nn as nn
import torch.nn.functional as F

import mmlocal  # noqa: F401
from mmlocal.local.methods import FeatureInfo, TaskInfo, build_method
from mmlocal.local.targets import LocalTargets
from mmlocal.models.heads import (AuxDGLClassifier, AuxNet34Classifier, HPFFImageNetDecoder,
                                  QuadrantReconDecoder)


def test_auxdgl_layers():
    head = AuxDGLClassifier(32, 10)
    convs = [m for m in head.convs.modules() if isinstance(m, nn.Conv2d)]
    assert [(c.in_channels, c.out_channels, c.kernel_size) for c in convs] == \
        [(32, 128, (1, 1)), (128, 128, (1, 1)), (128, 128, (1, 1))]
    fcs = [m for m in head.modules() if isinstance(m, nn.Linear)]
    assert [(f.in_features, f.out_features) for f in fcs] == \
        [(128, 512), (512, 512), (512, 512), (512, 10)]
    assert sum(isinstance(m, nn.BatchNorm1d) for m in head.modules()) == 3
    assert head(torch.randn(4, 32, 8, 8)).shape == (4, 10)


def test_auxnet34_expands_narrow_maps_only():
    narrow, wide = AuxNet34Classifier(64, 1000), AuxNet34Classifier(256, 1000)
    convs = [m for m in narrow.modules() if isinstance(m, nn.Conv2d)]
    assert [(c.in_channels, c.out_channels, c.kernel_size) for c in convs] == \
        [(64, 128, (1, 1)), (128, 64, (1, 1))]
    assert not any(isinstance(m, nn.Conv2d) for m in wide.modules())
    assert narrow(torch.randn(2, 64, 7, 7)).shape == (2, 1000)


def test_hpff_imagenet_decoder_14_goes_up_to_112_then_down_to_56():
    dec = HPFFImageNetDecoder(1024, ratio=16)
    sizes = []
    for stage in dec.stages:
        stage[0].register_forward_pre_hook(lambda m, a: sizes.append(tuple(a[0].shape[1:])))
    out = dec(torch.randn(1, 1024, 14, 14), (224, 224))
    assert out.shape == (1, 3, 224, 224) and 0 < out.min() and out.max() < 1
    assert sizes == [(128, 112, 112), (64, 56, 56), (32, 112, 112)]


def test_pff_code_variants_sum_quadrant_bces():
    task = TaskInfo('classification', 10)
    feat = torch.rand(2, 16, 8, 8)
    targets = LocalTargets(inputs=torch.rand(2, 3, 32, 32) * 255,
                           labels=torch.randint(0, 10, (2, )))
    meth = build_method(dict(type='InfoPro'))
    lw = {'recon': 1., 'task': 0.}
    quad = meth.build_head(FeatureInfo(16, (8, 8)), task, lw, pff=('quadrant', 2))
    assert isinstance(quad.decoder, QuadrantReconDecoder) and len(quad.decoder.decoders) == 4
    preds = quad(feat, (32, 32))
    loss = quad.loss(preds, targets)['loss_recon']
    image = targets.image01
    want = sum(F.binary_cross_entropy(preds['recon'][..., r:r + 16, c:c + 16],
                                       image[..., r:r + 16, c:c + 16])
               for r in (0, 16) for c in (0, 16))
    torch.testing.assert_close(loss, want)
    out = meth.build_head(FeatureInfo(16, (8, 8)), task, lw, pff=('output', 2))
    preds = out(feat, (32, 32))
    torch.testing.assert_close(out.loss(preds, targets)['loss_recon'],
                               4 * F.binary_cross_entropy(preds['recon'], image))
