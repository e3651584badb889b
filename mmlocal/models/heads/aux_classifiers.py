"""Auxiliary classifiers psi: the networks that turn a local feature into a prediction.

Architectures follow the authors' code (shared/reference/ALGORITHMS.md §2.4-2.6, §3, §4).
Each takes ``in_channels`` and ``num_classes`` from the local-learning engine,
which infers them from the backbone; users never type channels.
"""
import math
from typing import Optional, Sequence, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F

from mmlocal.registry import MODELS


def conv_bn_relu(cin: int, cout: int, kernel: int, stride: int = 1,
                 bias: bool = False) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, kernel, stride, kernel // 2, bias=bias),
        nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


def init_infopro(module: nn.Module) -> None:
    """InfoPro's init: conv ~ N(0, sqrt(2 / (k*k*C_out))), BN gamma 1 beta 0."""
    for m in module.modules():
        if isinstance(m, nn.Conv2d):
            n = m.kernel_size[0] * m.kernel_size[1] * m.out_channels
            m.weight.data.normal_(0, math.sqrt(2. / n))
            if m.bias is not None:
                m.bias.data.zero_()
        elif isinstance(m, (nn.BatchNorm2d, nn.BatchNorm1d, nn.SyncBatchNorm)):
            m.weight.data.fill_(1)
            m.bias.data.zero_()


@MODELS.register_module()
class ConvAuxClassifier(nn.Module):
    """InfoPro/DGL auxiliary classifier ``<c>c<f>f`` (0c1f ... 2c2f).

    ``c`` 3x3 conv layers (the first one doubles the width and halves the map
    while the width is below 64, as in the CIFAR code), global average pooling,
    then ``f`` linear layers (hidden width 128*widen).
    """
    ARCHS = ('0c1f', '0c2f', '1c1f', '1c2f', '1c3f', '2c2f')

    def __init__(self, in_channels: int, num_classes: int, arch: str = '1c2f',
                 widen: int = 1, hidden: int = 128) -> None:
        super().__init__()
        if arch not in self.ARCHS:
            raise ValueError(f'unknown auxiliary classifier arch {arch!r}; '
                             f'choose one of {self.ARCHS}')
        num_convs, num_fcs = int(arch[0]), int(arch[2])
        layers = []
        c = in_channels
        for i in range(num_convs):
            if i == 0:
                cout = 2 * c * widen if c < 64 else c * widen
                stride = 2 if c < 64 else 1
            else:
                cout, stride = c, 1
            layers.append(conv_bn_relu(c, cout, 3, stride))
            c = cout
        self.convs = nn.Sequential(*layers)
        fcs = []
        for i in range(num_fcs - 1):
            fcs += [nn.Linear(c, hidden * widen), nn.ReLU(inplace=True)]
            c = hidden * widen
        fcs.append(nn.Linear(c, num_classes))
        self.fcs = nn.Sequential(*fcs)
        init_infopro(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.convs(x)
        return self.fcs(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))


@MODELS.register_module()
class DGLMLPSRClassifier(nn.Module):
    """The original DGL ``mlp-sr`` auxiliary net (Belilovsky et al.).

    Pool to ceil(size/4), ``nlin`` x [1x1 conv, BN, ReLU], pool to 2x2,
    ``mlp`` x [Linear, BN1d, ReLU], Linear to the classes.
    """

    def __init__(self, in_channels: int, num_classes: int, nlin: int = 3,
                 mlp: int = 3) -> None:
        super().__init__()
        c = in_channels
        self.convs = nn.Sequential(*[
            nn.Sequential(nn.Conv2d(c, c, 1, bias=False), nn.BatchNorm2d(c),
                          nn.ReLU(inplace=True)) for _ in range(nlin)
        ])
        d = 4 * c
        self.mlp = nn.Sequential(*[
            nn.Sequential(nn.Linear(d, d), nn.BatchNorm1d(d), nn.ReLU(inplace=True))
            for _ in range(mlp)
        ])
        self.fc = nn.Linear(d, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        size = (math.ceil(x.shape[-2] / 4), math.ceil(x.shape[-1] / 4))
        x = self.convs(F.adaptive_avg_pool2d(x, size))
        x = torch.flatten(F.adaptive_avg_pool2d(x, 2), 1)
        return self.fc(self.mlp(x))


@MODELS.register_module()
class AuxDGLClassifier(nn.Module):
    """MLAAN's k=3 DGL head (``auxDGL``, ALGORITHMS.md §3, used by
    ``resnetDGLbin.py``): 3 x [1x1 conv (C->128->128->128), BN, ReLU], GAP,
    3 x [Linear (128->512, then 512->512), BN1d, ReLU], Linear 512->classes."""

    def __init__(self, in_channels: int, num_classes: int, channels: int = 128,
                 hidden: int = 512, num_convs: int = 3, num_fcs: int = 3) -> None:
        super().__init__()
        convs, c = [], in_channels
        for _ in range(num_convs):
            convs.append(conv_bn_relu(c, channels, 1))
            c = channels
        self.convs = nn.Sequential(*convs)
        fcs = []
        for _ in range(num_fcs):
            fcs += [nn.Linear(c, hidden), nn.BatchNorm1d(hidden), nn.ReLU(inplace=True)]
            c = hidden
        self.mlp = nn.Sequential(*fcs)
        self.fc = nn.Linear(c, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.flatten(F.adaptive_avg_pool2d(self.convs(x), 1), 1)
        return self.fc(self.mlp(x))


@MODELS.register_module()
class AuxNet34Classifier(nn.Module):
    """MLAAN's ResNet-34 ImageNet head (``auxnet34``, ALGORITHMS.md §6.5):
    for maps of fewer than ``expand_below`` (256) channels two 1x1 convs
    C->2C->C with BN and ReLU, then GAP -> FC; wider maps GAP -> FC only."""

    def __init__(self, in_channels: int, num_classes: int, expand_below: int = 256) -> None:
        super().__init__()
        c = in_channels
        self.convs = nn.Sequential(conv_bn_relu(c, 2 * c, 1), conv_bn_relu(2 * c, c, 1)) \
            if c < expand_below else nn.Identity()
        self.fc = nn.Linear(c, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(self.convs(x), 1), 1))


@MODELS.register_module()
class ImageNetAuxClassifier(nn.Module):
    """InfoPro's ImageNet psi (ALGORITHMS.md §2.5) for Bottleneck ResNet features.

    1x1 C->128, 3x3 s2 128->256, 3x3 s2 256->512, 1x1 512->2048 (BN, ReLU
    after each), GAP, FC. Strides are dropped when the map is already small.
    """

    def __init__(self, in_channels: int, num_classes: int,
                 widths: Sequence[int] = (128, 256, 512, 2048)) -> None:
        super().__init__()
        w1, w2, w3, w4 = widths
        self.convs = nn.Sequential(
            conv_bn_relu(in_channels, w1, 1), conv_bn_relu(w1, w2, 3, 2),
            conv_bn_relu(w2, w3, 3, 2), conv_bn_relu(w3, w4, 1))
        self.fc = nn.Linear(w4, num_classes)
        init_infopro(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.convs(x)
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))


@MODELS.register_module()
class SegAuxClassifier(nn.Module):
    """InfoPro's segmentation psi (ALGORITHMS.md §2.6): dense logits.

    conv3x3 C->512 (bias), BN, ReLU, Dropout2d 0.1, conv1x1 512->classes.
    The engine upsamples the logits to the label size.
    """

    def __init__(self, in_channels: int, num_classes: int, channels: int = 512,
                 dropout: float = 0.1, norm_layer: Optional[type] = None) -> None:
        super().__init__()
        norm_layer = norm_layer or nn.BatchNorm2d
        self.conv = nn.Conv2d(in_channels, channels, 3, padding=1)
        self.bn = norm_layer(channels)
        self.relu = nn.ReLU(inplace=True)
        self.dropout = nn.Dropout2d(dropout)
        self.cls = nn.Conv2d(channels, num_classes, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.cls(self.dropout(self.relu(self.bn(self.conv(x)))))


@MODELS.register_module()
class PredSimNet(nn.Module):
    """PredSim's two local predictors (Nokland & Eidnes 2019; ALGORITHMS.md §4).

    Returns ``(logits, sim_feature)``: logits from an average-pooled,
    flattened map through a zero-initialised Linear; the similarity feature is
    the per-channel spatial std of a 3x3 conv of the map.
    """

    def __init__(self, in_channels: int, num_classes: int,
                 dim_in_decoder: int = 4096,
                 spatial: Tuple[int, int] = (8, 8)) -> None:
        super().__init__()
        self.sim_conv = nn.Conv2d(in_channels, in_channels, 3, padding=1, bias=False)
        # PredSim doubles the pooling kernel (h, then w, ...) until
        # C*H'*W' <= dim_in_decoder; adaptive pooling to that output size is the
        # same for divisible maps and also serves patches and other sizes.
        h, w = spatial
        turn = 0
        while in_channels * h * w > dim_in_decoder and (h > 1 or w > 1):
            if (turn % 2 == 0 and h > 1) or w == 1:
                h = max(h // 2, 1)
            else:
                w = max(w // 2, 1)
            turn += 1
        self.pool_out = (h, w)
        self.pred = nn.Linear(in_channels * h * w, num_classes)
        nn.init.zeros_(self.pred.weight)
        nn.init.zeros_(self.pred.bias)

    def forward(self, x: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        sim = self.sim_conv(x)
        sim = sim.flatten(2).std(dim=2) if sim.shape[-1] * sim.shape[-2] > 1 \
            else sim.flatten(1)
        h = F.adaptive_avg_pool2d(x, self.pool_out)
        return self.pred(h.flatten(1)), sim
