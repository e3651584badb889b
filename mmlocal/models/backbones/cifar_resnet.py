"""The CIFAR ResNet of He et al. (2016), as used by InfoPro, HPFF and MLAAN.

mmpretrain's ``ResNet_CIFAR`` is an ImageNet ResNet with a 3x3 stem (64
channels, four stages); the local-learning papers use the original CIFAR
family instead: a 16-channel stem and three stages of ``n`` BasicBlocks of
widths 16/32/64, ``depth = 6n + 2`` (ResNet-20/32/44/56/110).
"""
from typing import List, Optional, Sequence, Tuple, Union

import torch
import torch.nn as nn
from mmcv.cnn import build_conv_layer, build_norm_layer
from mmengine.model import BaseModule
from torch.nn.modules.batchnorm import _BatchNorm

from mmlocal.registry import MODELS


class CifarBasicBlock(BaseModule):
    """conv3x3-BN-ReLU-conv3x3-BN, plus the shortcut, then ReLU.

    Args:
        in_channels: Input channels.
        out_channels: Output channels.
        stride: Stride of the first conv (2 at the first block of a stage).
        downsample: Shortcut projection, None for the identity.
        conv_cfg: Config of the conv layers (None: ``nn.Conv2d``).
        norm_cfg: Config of the norm layers.
    """

    expansion = 1

    def __init__(self,
                 in_channels: int,
                 out_channels: int,
                 stride: int = 1,
                 downsample: Optional[nn.Module] = None,
                 conv_cfg: Optional[dict] = None,
                 norm_cfg: dict = dict(type='BN'),
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.stride = stride
        self.conv1 = build_conv_layer(
            conv_cfg, in_channels, out_channels, 3, stride=stride, padding=1,
            bias=False)
        self.bn1 = build_norm_layer(norm_cfg, out_channels)[1]
        self.conv2 = build_conv_layer(
            conv_cfg, out_channels, out_channels, 3, padding=1, bias=False)
        self.bn2 = build_norm_layer(norm_cfg, out_channels)[1]
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + identity)


@MODELS.register_module()
class CifarResNet(BaseModule):
    """ResNet-20/32/44/56/110 for 32x32 inputs (He et al., CVPR 2016, §4.2).

    Layout (relied upon by the local-learning split presets): ``stem``
    (conv3x3 3->16 without bias, BN, ReLU), then ``layer1``/``layer2``/
    ``layer3``, each an ``nn.Sequential`` of ``n = (depth - 2) / 6``
    :class:`CifarBasicBlock` with widths 16/32/64 and strides 1/2/2.

    Shortcuts: where the shape changes (first block of ``layer2`` and
    ``layer3``) the shortcut is a 1x1 conv with stride 2 + BN, i.e. the
    paper's *option B*. The paper's CIFAR numbers use option A (zero-padded
    identity, 0.46M params for ResNet-32); option B is what the InfoPro,
    HPFF and MLAAN code trains (``_make_layer`` with a conv1x1+BN
    ``downsample``), so results are comparable with theirs. It adds 2,752
    parameters (ResNet-32: 466,256 backbone parameters instead of 463,504).

    Init (via ``init_cfg``, applied by ``init_weights()``, which the Runner
    calls): Kaiming normal with ``fan_out`` for convs, i.e. N(0, 2/(k*k*C_out))
    as in the InfoPro code, and BN weight 1, bias 0.

    Args:
        depth: 20, 32, 44, 56 or 110.
        in_channels: Input image channels.
        base_channels: Width of ``stem`` and ``layer1``; doubled per stage.
        out_indices: Stages (0, 1, 2 for ``layer1..3``) whose outputs are
            returned, as a tuple, like mmpretrain backbones.
        frozen_stages: Stages to freeze (params fixed, BN in eval mode);
            -1 freezes nothing, 0 the stem, i the stem and ``layer1..i``.
        norm_eval: Keep every BN layer in eval mode during training.
        conv_cfg: Config of the conv layers (None: ``nn.Conv2d``).
        norm_cfg: Config of the norm layers, e.g. ``dict(type='SyncBN')``.
        init_cfg: Initialisation config, see above.
    """

    #: depth -> blocks per stage
    arch_settings = {
        20: 3,
        32: 5,
        44: 7,
        56: 9,
        110: 18,
    }
    num_stages = 3

    def __init__(self,
                 depth: int,
                 in_channels: int = 3,
                 base_channels: int = 16,
                 out_indices: Sequence[int] = (2, ),
                 frozen_stages: int = -1,
                 norm_eval: bool = False,
                 conv_cfg: Optional[dict] = None,
                 norm_cfg: dict = dict(type='BN', requires_grad=True),
                 init_cfg: Optional[Union[dict, List[dict]]] = [
                     dict(type='Kaiming', layer='Conv2d', mode='fan_out',
                          nonlinearity='relu', distribution='normal'),
                     dict(type='Constant', val=1, bias=0,
                          layer=['_BatchNorm', 'GroupNorm'])
                 ]) -> None:
        super().__init__(init_cfg=init_cfg)
        if depth not in self.arch_settings:
            raise ValueError(
                f'invalid depth {depth} for CifarResNet: use one of '
                f'{sorted(self.arch_settings)} (depth = 6n + 2, BasicBlock)')
        if isinstance(out_indices, int):
            out_indices = (out_indices, )
        out_indices = tuple(out_indices)
        for i in out_indices:
            if not -self.num_stages <= i < self.num_stages:
                raise ValueError(
                    f'out_indices {out_indices} out of range: CifarResNet has '
                    f'{self.num_stages} stages (0, 1, 2 or negative)')
        if not -1 <= frozen_stages <= self.num_stages:
            raise ValueError(f'frozen_stages must be in [-1, {self.num_stages}]'
                             f', got {frozen_stages}')
        self.depth = depth
        self.num_blocks = self.arch_settings[depth]
        self.out_indices = tuple(i % self.num_stages for i in out_indices)
        self.frozen_stages = frozen_stages
        self.norm_eval = norm_eval
        self.conv_cfg = conv_cfg
        self.norm_cfg = norm_cfg

        self.stem = nn.Sequential(
            build_conv_layer(conv_cfg, in_channels, base_channels, 3,
                             padding=1, bias=False),
            build_norm_layer(norm_cfg, base_channels)[1],
            nn.ReLU(inplace=True))

        self.res_layers = []
        in_ch = base_channels
        for i in range(self.num_stages):
            out_ch = base_channels * 2**i
            stride = 1 if i == 0 else 2
            layer = self._make_layer(in_ch, out_ch, self.num_blocks, stride)
            name = f'layer{i + 1}'
            self.add_module(name, layer)
            self.res_layers.append(name)
            in_ch = out_ch
        self.feat_dim = in_ch  # 64 for the default width
        self.out_channels = tuple(base_channels * 2**i for i in self.out_indices)
        self._freeze_stages()

    def _make_layer(self, in_channels: int, out_channels: int,
                    num_blocks: int, stride: int) -> nn.Sequential:
        downsample = None
        if stride != 1 or in_channels != out_channels:
            downsample = nn.Sequential(  # option B shortcut
                build_conv_layer(self.conv_cfg, in_channels, out_channels, 1,
                                 stride=stride, bias=False),
                build_norm_layer(self.norm_cfg, out_channels)[1])
        blocks = [
            CifarBasicBlock(in_channels, out_channels, stride, downsample,
                            self.conv_cfg, self.norm_cfg)
        ]
        blocks += [
            CifarBasicBlock(out_channels, out_channels, 1, None,
                            self.conv_cfg, self.norm_cfg)
            for _ in range(1, num_blocks)
        ]
        return nn.Sequential(*blocks)

    def _freeze_stages(self) -> None:
        if self.frozen_stages < 0:
            return
        frozen = [self.stem] + [
            getattr(self, name) for name in self.res_layers
        ][:self.frozen_stages]
        for module in frozen:
            module.eval()
            for param in module.parameters():
                param.requires_grad = False

    def forward(self, x: torch.Tensor) -> Tuple[torch.Tensor, ...]:
        x = self.stem(x)
        outs = []
        for i, name in enumerate(self.res_layers):
            x = getattr(self, name)(x)
            if i in self.out_indices:
                outs.append(x)
        return tuple(outs)

    def train(self, mode: bool = True) -> 'CifarResNet':
        super().train(mode)
        self._freeze_stages()
        if mode and self.norm_eval:
            for m in self.modules():
                if isinstance(m, _BatchNorm):
                    m.eval()
        return self
