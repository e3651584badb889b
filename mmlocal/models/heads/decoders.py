"""Reconstruction decoders w of InfoPro: they rebuild the input image from a
local feature, so a module keeps the information about its input (ALGORITHMS.md
§2.1, §2.4-2.6). All end in a Sigmoid and are trained with BCE."""
from typing import Optional, Sequence, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F

from mmlocal.registry import MODELS
from .aux_classifiers import conv_bn_relu, init_infopro
from .layout import conv_bn, cpu_layout


def resize(x: torch.Tensor, size: Sequence[int]) -> torch.Tensor:
    """Bilinear resize with ``align_corners=True``, as the authors' decoders.

    Cost, not maths: a resize to the map's own size is the identity (every
    output pixel is its input pixel with weight 1, in value and gradient), so
    it is skipped; on the CPU it runs in channels-last (``layout.py``).
    """
    if tuple(x.shape[-2:]) == tuple(size):
        return x
    return F.interpolate(cpu_layout(x), size=tuple(size), mode='bilinear', align_corners=True)


def reconstruction_loss(recon: torch.Tensor, image01: torch.Tensor) -> torch.Tensor:
    """Mean BCE between a decoder's output and the image in [0, 1], in at
    least fp32 (half precision is promoted, fp64 kept) with autocast off: CUDA
    autocast refuses ``binary_cross_entropy`` whatever its inputs' dtype
    (InfoPro under AMP failed on the H200 before this)."""
    dtype = torch.float64 if recon.dtype == torch.float64 else torch.float32  # no aten op
    with torch.autocast(device_type=recon.device.type, enabled=False):
        # NCHW like the target: elementwise kernels are slow on mixed layouts
        return F.binary_cross_entropy(recon.to(dtype).contiguous(),
                                      image01.to(recon.device, dtype))


@MODELS.register_module()
class ReconDecoder(nn.Module):
    """The CIFAR/SVHN/STL decoder: resize to the image, conv3x3 C->12, BN,
    ReLU, conv3x3 12->3, Sigmoid."""

    def __init__(self, in_channels: int, hidden: int = 12, loss_scale: float = 1.) -> None:
        super().__init__()
        self.loss_scale = loss_scale
        self.conv1 = conv_bn_relu(in_channels, hidden, 3, bias=True)
        self.conv2 = nn.Conv2d(hidden, 3, 3, padding=1)
        init_infopro(self)

    def forward(self, x: torch.Tensor, out_size: Tuple[int, int]) -> torch.Tensor:
        x = conv_bn(self.conv1, cpu_layout(resize(x, out_size)))
        return torch.sigmoid(self.conv2(cpu_layout(x)))


@MODELS.register_module()
class UpsampleDecoder(nn.Module):
    """The ImageNet / segmentation decoder (ALGORITHMS.md §2.5-2.6).

    conv1x1 C->128, then for each width: upsample x2, conv3x3, BN, ReLU; the
    last stage resizes to the exact target size (patches, odd crops) before
    the final conv3x3 ->3 and Sigmoid.
    """

    def __init__(self, in_channels: int,
                 widths: Sequence[int] = (128, 32, 12), loss_scale: float = 1.) -> None:
        super().__init__()
        self.loss_scale = loss_scale
        self.reduce = conv_bn_relu(in_channels, widths[0], 1)
        self.stages = nn.ModuleList(
            conv_bn_relu(a, b, 3) for a, b in zip(widths[:-1], widths[1:]))
        self.out = nn.Conv2d(widths[-1], 3, 3, padding=1)
        init_infopro(self)

    def forward(self, x: torch.Tensor, out_size: Tuple[int, int]) -> torch.Tensor:
        x = self.reduce(x)
        for stage in self.stages:
            size = (min(2 * x.shape[-2], out_size[0]), min(2 * x.shape[-1], out_size[1]))
            x = conv_bn(stage, resize(x, size))
        return torch.sigmoid(self.out(resize(x, out_size)))


@MODELS.register_module()
class QuadrantReconDecoder(nn.Module):
    """PFF as the authors' CIFAR code does it (ALGORITHMS.md §5.3): the
    feature is cut into n x n quadrants (integer split at h//n, w//n), each
    resized to its image region and decoded by its *own* decoder (``decoder``,
    default ``ReconDecoder``); the reconstructions tile the image and the BCE
    of the quadrants is summed (``loss_scale`` = n^2 times the mean BCE over
    the image). psi sees the full map. No memory is saved: it reproduces the
    published numbers (``pff=dict(patches=n, variant='quadrant')``); the
    shared-head PFF of the paper is ``variant='paper'``."""

    def __init__(self, in_channels: int, patches: int = 2,
                 decoder: Optional[dict] = None) -> None:
        super().__init__()
        self.patches = patches
        cfg = dict(decoder or dict(type='ReconDecoder'))
        cfg['in_channels'] = in_channels
        self.decoders = nn.ModuleList(
            MODELS.build(dict(cfg)) for _ in range(patches * patches))
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


@MODELS.register_module()
class HPFFImageNetDecoder(nn.Module):
    """HPFF's ImageNet decoder (ALGORITHMS.md §5.4), picked by how many times
    the map is smaller than the image (for a 224 crop: 56², 28², 14²):

    * 1/4: 1x1->128, up to 1/2, 3x3->16, up to 1, 3x3->3, Sigmoid;
    * 1/8: 1x1->128, up to 1/4, 3x3->32, up to 1/2, 3x3->16, up to 1, 3x3->3;
    * 1/16 (their K=4 setting): 1x1->128, up to **1/2** (112), 3x3->64,
      **resize down to 1/4** (56), 3x3->32, up to 1/2, 3x3->16, up to 1, 3x3->3.

    Every conv but the last is followed by BN and ReLU; resizing is bilinear.
    ``loss_scale``: 4 with their output-split PFF (BCE of the 4 output
    quadrants summed = 4 x the image BCE).
    """
    PLANS = {4: ((2, 16),), 8: ((4, 32), (2, 16)), 16: ((2, 64), (4, 32), (2, 16))}

    def __init__(self, in_channels: int, ratio: int = 16, loss_scale: float = 1.) -> None:
        super().__init__()
        if ratio not in self.PLANS:
            raise ValueError(f'HPFFImageNetDecoder has plans for maps 1/{sorted(self.PLANS)} '
                             f'of the image, got ratio={ratio}')
        self.ratio = ratio
        self.loss_scale = loss_scale
        self.reduce = conv_bn_relu(in_channels, 128, 1)
        c = 128
        self.divisors = [d for d, _ in self.PLANS[ratio]]
        stages = []
        for _, cout in self.PLANS[ratio]:
            stages.append(conv_bn_relu(c, cout, 3))
            c = cout
        self.stages = nn.ModuleList(stages)
        self.out = nn.Conv2d(c, 3, 3, padding=1)
        init_infopro(self)

    def forward(self, x: torch.Tensor, out_size: Tuple[int, int]) -> torch.Tensor:
        x = self.reduce(x)
        for d, stage in zip(self.divisors, self.stages):
            size = (max(out_size[0] // d, 1), max(out_size[1] // d, 1))
            x = conv_bn(stage, resize(x, size))
        return torch.sigmoid(self.out(resize(x, out_size)))
