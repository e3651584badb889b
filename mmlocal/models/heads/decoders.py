"""Reconstruction decoders w of InfoPro: they rebuild the input image from a
local feature, so a module keeps the information about its input (ALGORITHMS.md
§2.1, §2.4-2.6). All end in a Sigmoid and are trained with BCE."""
from typing import Sequence, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F

from mmlocal.registry import MODELS
from .aux_classifiers import conv_bn_relu, init_infopro


@MODELS.register_module()
class ReconDecoder(nn.Module):
    """The CIFAR/SVHN/STL decoder: resize to the image, conv3x3 C->12, BN,
    ReLU, conv3x3 12->3, Sigmoid."""

    def __init__(self, in_channels: int, hidden: int = 12) -> None:
        super().__init__()
        self.conv1 = conv_bn_relu(in_channels, hidden, 3, bias=True)
        self.conv2 = nn.Conv2d(hidden, 3, 3, padding=1)
        init_infopro(self)

    def forward(self, x: torch.Tensor, out_size: Tuple[int, int]) -> torch.Tensor:
        x = F.interpolate(x, size=tuple(out_size), mode='bilinear', align_corners=True)
        return torch.sigmoid(self.conv2(self.conv1(x)))


@MODELS.register_module()
class UpsampleDecoder(nn.Module):
    """The ImageNet / segmentation decoder (ALGORITHMS.md §2.5-2.6).

    conv1x1 C->128, then for each width: upsample x2, conv3x3, BN, ReLU; the
    last stage resizes to the exact target size (patches, odd crops) before
    the final conv3x3 ->3 and Sigmoid.
    """

    def __init__(self, in_channels: int,
                 widths: Sequence[int] = (128, 32, 12)) -> None:
        super().__init__()
        self.reduce = conv_bn_relu(in_channels, widths[0], 1)
        self.stages = nn.ModuleList(
            conv_bn_relu(a, b, 3) for a, b in zip(widths[:-1], widths[1:]))
        self.out = nn.Conv2d(widths[-1], 3, 3, padding=1)
        init_infopro(self)

    def forward(self, x: torch.Tensor, out_size: Tuple[int, int]) -> torch.Tensor:
        x = self.reduce(x)
        for stage in self.stages:
            size = (min(2 * x.shape[-2], out_size[0]), min(2 * x.shape[-1], out_size[1]))
            x = stage(F.interpolate(x, size=size, mode='bilinear', align_corners=True))
        x = F.interpolate(x, size=tuple(out_size), mode='bilinear', align_corners=True)
        return torch.sigmoid(self.out(x))


@MODELS.register_module()
class QuadrantReconDecoder(nn.Module):
    """PFF as the authors' CIFAR code does it (ALGORITHMS.md §5.3): the
    feature is cut into n x n quadrants (integer split at h//n, w//n), each
    resized to its image region and decoded by its *own* ``ReconDecoder``;
    the reconstructions tile the image and the BCE of the quadrants is summed
    (``loss_scale`` = n^2 times the mean BCE over the image). No memory is
    saved: it reproduces the published numbers, the shared-head PFF of the
    paper is ``pff=dict(patches=n)``."""

    def __init__(self, in_channels: int, patches: int = 2, hidden: int = 12) -> None:
        super().__init__()
        self.patches = patches
        self.decoders = nn.ModuleList(
            ReconDecoder(in_channels, hidden) for _ in range(patches * patches))
        self.loss_scale = float(patches * patches)

    def forward(self, x: torch.Tensor, out_size: Tuple[int, int]) -> torch.Tensor:
        n = self.patches
        h, w = x.shape[-2:]
        if n > h or n > w:
            raise ValueError(f'QuadrantReconDecoder: {n}x{n} quadrants do not fit a {h}x{w} map')
        fr = [i * h // n for i in range(n)] + [h]
        fc = [i * w // n for i in range(n)] + [w]
        orow = [i * out_size[0] // n for i in range(n)] + [out_size[0]]
        ocol = [i * out_size[1] // n for i in range(n)] + [out_size[1]]
        rows = []
        for i in range(n):
            cols = []
            for j in range(n):
                dec = self.decoders[i * n + j]
                size = (orow[i + 1] - orow[i], ocol[j + 1] - ocol[j])
                cols.append(dec(x[..., fr[i]:fr[i + 1], fc[j]:fc[j + 1]], size))
            rows.append(torch.cat(cols, dim=-1))
        return torch.cat(rows, dim=-2)
