"""CifarResNet: layout, parameter counts, shapes, freezing, init, and use
inside an mmpretrain ImageClassifier on real CIFAR-10 images."""
import math

import pytest
import torch
import torch.nn as nn
from mmengine.registry import init_default_scope
from torch.nn.modules.batchnorm import _BatchNorm

from mmlocal.models.backbones import CifarResNet

DEPTHS = {20: 3, 32: 5, 44: 7, 56: 9, 110: 18}


def expected_params(depth: int, width: int = 16, num_classes: int = 0) -> int:
    """Parameters of the He et al. CIFAR ResNet with option-B shortcuts,
    counted from the architecture: conv weights (no bias) and BN affine."""
    n = (depth - 2) // 6
    conv = lambda cin, cout, k: cin * cout * k * k  # noqa: E731
    bn = lambda c: 2 * c  # noqa: E731
    total = conv(3, width, 3) + bn(width)
    cin = width
    for stage in range(3):
        cout = width * 2**stage
        for b in range(n):
            c_in = cin if b == 0 else cout
            total += conv(c_in, cout, 3) + bn(cout) + conv(cout, cout, 3) + bn(cout)
            if b == 0 and c_in != cout:
                total += conv(c_in, cout, 1) + bn(cout)  # projection shortcut
        cin = cout
    if num_classes:
        total += cin * num_classes + num_classes
    return total


def n_params(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


@pytest.mark.parametrize('depth', sorted(DEPTHS))
def test_layout_params_and_shapes(depth):
    model = CifarResNet(depth=depth, out_indices=(0, 1, 2))
    n = DEPTHS[depth]
    assert model.res_layers == ['layer1', 'layer2', 'layer3']
    assert [type(m) for m in model.stem] == [nn.Conv2d, nn.BatchNorm2d, nn.ReLU]
    assert model.stem[0].bias is None
    assert [len(getattr(model, name)) for name in model.res_layers] == [n] * 3
    assert model.layer1[0].downsample is None
    for name in ('layer2', 'layer3'):  # option B: conv1x1 stride 2 + BN
        ds = getattr(model, name)[0].downsample
        assert isinstance(ds[0], nn.Conv2d) and ds[0].kernel_size == (1, 1)
        assert ds[0].stride == (2, 2) and isinstance(ds[1], nn.BatchNorm2d)
    assert n_params(model) == expected_params(depth)

    outs = model(torch.randn(2, 3, 32, 32))
    assert [tuple(o.shape) for o in outs] == [(2, 16, 32, 32), (2, 32, 16, 16),
                                              (2, 64, 8, 8)]
    assert model.out_channels == (16, 32, 64)


def test_exact_counts_resnet32_resnet110():
    # option A (zero-padded identity) would give 463,504 / 1,727,312
    assert n_params(CifarResNet(depth=32)) == 466_256
    assert n_params(CifarResNet(depth=110)) == 1_730_064
    assert expected_params(32, num_classes=10) == 466_906  # ~0.46M with the FC
    assert expected_params(110, num_classes=10) == 1_730_714  # ~1.7M


def test_out_indices_and_input_size():
    model = CifarResNet(depth=20)  # default: last stage only
    outs = model(torch.randn(1, 3, 96, 96))  # STL-10 size
    assert isinstance(outs, tuple) and len(outs) == 1
    assert outs[0].shape == (1, 64, 24, 24)
    outs = CifarResNet(depth=20, out_indices=(-1, 1))(torch.randn(1, 3, 32, 32))
    assert [o.shape[1] for o in outs] == [32, 64]  # returned in stage order


def test_invalid_arguments():
    with pytest.raises(ValueError, match=r'\[20, 32, 44, 56, 110\]'):
        CifarResNet(depth=18)
    with pytest.raises(ValueError, match='out_indices'):
        CifarResNet(depth=20, out_indices=(3, ))
    with pytest.raises(ValueError, match='frozen_stages'):
        CifarResNet(depth=20, frozen_stages=4)


def test_frozen_stages_and_norm_eval():
    model = CifarResNet(depth=20, frozen_stages=1)
    model.train()
    for m in (model.stem, model.layer1):
        assert not any(p.requires_grad for p in m.parameters())
        assert not any(b.training for b in m.modules() if isinstance(b, _BatchNorm))
    assert all(p.requires_grad for p in model.layer2.parameters())
    assert model.layer2[0].bn1.training

    model = CifarResNet(depth=20, norm_eval=True)
    model.train()
    assert not any(m.training for m in model.modules() if isinstance(m, _BatchNorm))
    assert all(p.requires_grad for p in model.parameters())


def test_init_kaiming_fan_out():
    torch.manual_seed(0)
    model = CifarResNet(depth=20)
    model.init_weights()
    conv = model.layer3[1].conv1  # 36,864 weights: std estimate within ~1%
    assert conv.weight.std().item() == pytest.approx(math.sqrt(2 / (9 * 64)), rel=0.03)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            assert torch.all(m.weight == 1) and torch.all(m.bias == 0)


def test_in_image_classifier_on_real_images(batch):
    from mmpretrain.registry import MODELS
    init_default_scope('mmpretrain')
    model = MODELS.build(dict(
        type='ImageClassifier',
        data_preprocessor=dict(num_classes=10, mean=[125.3, 123.0, 113.9],
                               std=[63.0, 62.1, 66.7]),
        backbone=dict(type='CifarResNet', depth=32),
        neck=dict(type='GlobalAveragePooling'),
        head=dict(type='LinearClsHead', num_classes=10, in_channels=64)))
    model.init_weights()
    assert n_params(model) == expected_params(32, num_classes=10)
    data = model.data_preprocessor(batch, training=True)
    losses = model(**data, mode='loss')
    assert torch.isfinite(losses['loss'])
    losses['loss'].backward()
    assert model.backbone.stem[0].weight.grad.abs().sum() > 0
    model.eval()
    with torch.no_grad():
        preds = model(**model.data_preprocessor(batch), mode='predict')
    assert len(preds) == 8 and preds[0].pred_score.shape == (10, )
