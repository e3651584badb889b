"""Local heads for Vision Transformer features.

The engine hands a ViT boundary output to its heads as the patch-token grid
(B, C, gh, gw) (class/distillation tokens dropped), so these heads are plain
map-to-prediction modules like the ConvNet ones and PFF patches the token grid
the same way. Transformer residual streams grow in magnitude with depth, so
every head starts with a LayerNorm over the channels.

* ``ViTAuxClassifier``: psi of the InfoPro journal version for DeiT-S: a 3x3
  conv with stride 2 over the token grid, then 3 standard Transformer layers;
  here followed by LayerNorm, token average pooling and a linear classifier.
* ``TokenMLPClassifier``: a light psi, LayerNorm, token average pooling and a
  small MLP (the DGL-style head MLAAN's code applies to pooled ViT-B tokens).
* ``PatchReconDecoder``: InfoPro's w for ViTs, "an MLP that reconstructs the
  model inputs": a per-token MLP to the 3 x p x p pixels of its patch,
  rearranged into the image region (pixel shuffle), Sigmoid.
"""
from typing import Optional, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F

from mmlocal.registry import MODELS


class ChannelLayerNorm(nn.LayerNorm):
    """LayerNorm over the channels of a (B, C, H, W) token grid."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)


def init_vit(module: nn.Module) -> None:
    """ViT-style init: truncated normal (std 0.02) linears, zero biases."""
    for m in module.modules():
        if isinstance(m, nn.Linear):
            nn.init.trunc_normal_(m.weight, std=.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.LayerNorm):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)


@MODELS.register_module()
class ViTAuxClassifier(nn.Module):
    """InfoPro's ViT psi: conv3x3 stride 2 over the token grid, Transformer
    layers, LayerNorm, average pooling, linear classifier.

    Args:
        in_channels: token width of the backbone (inferred by the engine).
        num_classes: classes (or the contrast feature size).
        embed_dims: width of the head; default ``in_channels // 2`` (384 for
            ViT-B, the DeiT-S width the journal's heads ran at).
        num_layers: Transformer layers (3 in the InfoPro journal).
        num_heads: attention heads; default ``embed_dims // 64``.
        mlp_ratio: FFN hidden width over ``embed_dims``.
    """

    def __init__(self, in_channels: int, num_classes: int,
                 embed_dims: Optional[int] = None, num_layers: int = 3,
                 num_heads: Optional[int] = None, mlp_ratio: float = 4.,
                 dropout: float = 0.) -> None:
        super().__init__()
        dims = embed_dims or max(in_channels // 2, 64)
        heads = num_heads or max(dims // 64, 1)
        if dims % heads:
            raise ValueError(f'ViTAuxClassifier: embed_dims={dims} is not divisible by '
                             f'num_heads={heads}; set both so that it is')
        self.norm_in = ChannelLayerNorm(in_channels)
        self.reduce = nn.Conv2d(in_channels, dims, 3, stride=2, padding=1)
        layer = nn.TransformerEncoderLayer(
            dims, heads, int(dims * mlp_ratio), dropout, activation='gelu',
            batch_first=True, norm_first=True)
        self.layers = nn.TransformerEncoder(layer, num_layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(dims)
        self.fc = nn.Linear(dims, num_classes)
        init_vit(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.reduce(self.norm_in(x))          # (B, D, gh/2, gw/2)
        x = self.layers(x.flatten(2).transpose(1, 2))  # (B, N', D)
        return self.fc(self.norm(x).mean(dim=1))


@MODELS.register_module()
class TokenMLPClassifier(nn.Module):
    """Light psi for tokens: LayerNorm, average pooling, MLP.

    ``num_layers`` linear layers (GELU between them), hidden width ``hidden``
    (default ``in_channels``); ``num_layers=1`` is a linear probe.
    """

    def __init__(self, in_channels: int, num_classes: int, hidden: Optional[int] = None,
                 num_layers: int = 2) -> None:
        super().__init__()
        if num_layers < 1:
            raise ValueError(f'TokenMLPClassifier needs num_layers >= 1, got {num_layers}')
        hidden = hidden or in_channels
        self.norm = nn.LayerNorm(in_channels)
        layers, c = [], in_channels
        for _ in range(num_layers - 1):
            layers += [nn.Linear(c, hidden), nn.GELU()]
            c = hidden
        layers.append(nn.Linear(c, num_classes))
        self.mlp = nn.Sequential(*layers)
        init_vit(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.mlp(self.norm(x.flatten(2).mean(dim=2)))


@MODELS.register_module()
class PatchReconDecoder(nn.Module):
    """InfoPro's ViT decoder w: a per-token MLP predicting the pixels of the
    token's own patch.

    Each token gives 3 x p x p values, pixel-shuffled into a (3, gh*p, gw*p)
    image; if that is not the size of the region to reconstruct (another
    input size than the probe, or odd PFF patches) it is resized bilinearly.

    Args:
        in_channels: token width (inferred).
        patch_size: p, the backbone's patch size (the engine passes it).
        hidden: MLP hidden width (default ``in_channels``).
    """

    def __init__(self, in_channels: int, patch_size: int = 16,
                 hidden: Optional[int] = None) -> None:
        super().__init__()
        hidden = hidden or in_channels
        self.patch_size = int(patch_size)
        self.norm = ChannelLayerNorm(in_channels)
        # 1x1 convolutions = the same MLP applied to every token
        self.mlp = nn.Sequential(
            nn.Conv2d(in_channels, hidden, 1), nn.GELU(),
            nn.Conv2d(hidden, 3 * self.patch_size ** 2, 1))
        for m in self.mlp:
            if isinstance(m, nn.Conv2d):
                nn.init.trunc_normal_(m.weight, std=.02)
                nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor, out_size: Tuple[int, int]) -> torch.Tensor:
        x = F.pixel_shuffle(self.mlp(self.norm(x)), self.patch_size)
        if tuple(x.shape[-2:]) != tuple(out_size):
            x = F.interpolate(x, size=tuple(out_size), mode='bilinear', align_corners=False)
        return torch.sigmoid(x)
