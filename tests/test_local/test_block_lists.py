"""Block lists of the popular backbones (``mmlocal/local/block_lists.py``).

Each backbone is built from its toolbox's own zoo config, probed on a small
input and split with ``num_modules`` alone: the blocks are modules its
forward calls one after another, in order, each returning one tensor (token
blocks with their grid), so every split is a valid plan. HRNet splits inside
layer1 only, and a larger K is refused saying why.
"""
import pytest
import torch.nn as nn

from mmlocal.local.block_lists import block_paths, output_modules
from mmlocal.local.probe import default_probe_size, probe_blocks
from mmlocal.local.split import resolve_boundaries

# zoo config -> (first block, last block, number of blocks, token blocks)
ZOO = {
    'mmpretrain::convnext/convnext-tiny_32xb128_in1k.py':
        ('stages.0.0', 'stages.3.2', 18, False),
    'mmpretrain::swin_transformer/swin-tiny_16xb64_in1k.py':
        ('stages.0.blocks.0', 'stages.3.blocks.1', 12, True),
    'mmpretrain::swin_transformer_v2/swinv2-tiny-w8_16xb64_in1k-256px.py':
        ('stages.0.blocks.0', 'stages.3.blocks.1', 12, True),
    'mmpretrain::deit/deit-tiny_4xb256_in1k.py': ('layers.0', 'layers.11', 12, True),
    'mmpretrain::regnet/regnetx-400mf_8xb128_in1k.py': ('layer1.0', 'layer4.11', 22, False),
    'mmpretrain::resnext/resnext50-32x4d_8xb32_in1k.py': ('maxpool', 'layer4.2', 17, False),
    'mmpretrain::seresnet/seresnet50_8xb32_in1k.py': ('maxpool', 'layer4.2', 17, False),
    'mmpretrain::res2net/res2net50-w14-s8_8xb32_in1k.py': ('maxpool', 'layer4.2', 17, False),
    'mmpretrain::resnet/resnetv1d50_8xb32_in1k.py': ('maxpool', 'layer4.2', 17, False),
    'mmpretrain::mobilenet_v2/mobilenet-v2_8xb32_in1k.py': ('layer1.0', 'conv2', 18, False),
    'mmpretrain::mobilenet_v3/mobilenet-v3-small_8xb128_in1k.py':
        ('layer0', 'layer12', 13, False),
    'mmpretrain::efficientnet/efficientnet-b0_8xb32_in1k.py':
        ('layers.0', 'layers.6', 18, False),
    'mmseg::segformer/segformer_mit-b0_8xb2-160k_ade20k-512x512.py':
        ('layers.0.1.0', 'layers.3.1.1', 8, True),
    'mmseg::swin/swin-tiny-patch4-window7-in1k-pre_upernet_8xb2-160k_ade20k-512x512.py':
        ('stages.0.blocks.0', 'stages.3.blocks.1', 12, True),
    'mmseg::pspnet/pspnet_r50-d8_4xb2-40k_cityscapes-512x1024.py':
        ('maxpool', 'layer4.2', 17, False),
    'mmseg::mobilenet_v2/mobilenet-v2-d8_deeplabv3_4xb2-80k_cityscapes-512x1024.py':
        ('layer1.0', 'layer7.0', 17, False),
    'mmdet::swin/retinanet_swin-t-p4-w7_fpn_1x_coco.py':
        ('stages.0.blocks.0', 'stages.3.blocks.1', 12, True),
    'mmdet::yolox/yolox_tiny_8xb8-300e_coco.py': ('stem', 'stage4.2', 10, False),
    'mmdet::rtmdet/rtmdet_tiny_8xb32-300e_coco.py': ('stem', 'stage4.2', 10, False),
}


def zoo_backbone(config: str) -> nn.Module:
    """The zoo config's backbone (random init) inside a holder module."""
    from mmengine.hub import get_config
    from mmengine.registry import DefaultScope
    from mmengine.registry import MODELS
    cfg = get_config(config)
    bb = cfg.model.backbone
    bb.pop('init_cfg', None)
    if config.startswith('mmpretrain::swin'):
        bb.pad_small_map = True  # windows of 7/8 on the 64 px probe
    holder = nn.Module()
    with DefaultScope.overwrite_default_scope(config.split('::')[0]):
        holder.backbone = MODELS.build(bb)
    return holder


#: the issue's backbones and the detectors' stay in the fast suite
FAST = ('convnext-tiny', 'swin-tiny_16xb64', 'segformer', 'mobilenet-v2_8xb32', 'yolox')


@pytest.mark.parametrize('config', [
    pytest.param(c, marks=() if any(f in c for f in FAST) else pytest.mark.slow) for c in ZOO])
def test_zoo_backbones_split_with_num_modules_alone(config):
    first, last, n, tokens = ZOO[config]
    model = zoo_backbone(config)
    paths = block_paths(model)
    assert (paths[0], paths[-1], len(paths)) == (f'backbone.{first}', f'backbone.{last}', n)
    # the stem is marked by the list that knows it (ResNets' pool, the CSP stem)
    assert paths.stem == (paths[0] if first in ('maxpool', 'stem') else None)
    size = (64, 64) if config.startswith('mmpretrain::swin') else \
        default_probe_size(model.backbone)
    probe = probe_blocks(model, 'backbone', paths, size)  # refuses a non-flat list
    bounds = resolve_boundaries(model, 4)
    assert len(bounds) == 3 and bounds == sorted(bounds, key=paths.index)
    feats = [probe.feature(b) for b in bounds]
    assert all(f.tokens == tokens for f in feats)
    # deeper boundaries never have a finer grid
    assert [f.stride for f in feats] == sorted(f.stride for f in feats)
    if tokens and 'deit' not in config:  # Swin, MiT: each block's own grid (hw_shape)
        shapes = [probe.shapes[b] for b in bounds]
        assert [f.spatial[0] * f.spatial[1] for f in feats] == [s[1] for s in shapes]


def test_output_norms_of_swin_and_convnext():
    model = zoo_backbone(
        'mmseg::swin/swin-tiny-patch4-window7-in1k-pre_upernet_8xb2-160k_ade20k-512x512.py')
    assert output_modules(model) == [f'backbone.norm{i}' for i in range(4)]
    assert output_modules(zoo_backbone('mmseg::pspnet/pspnet_r50-d8_4xb2-40k_cityscapes-'
                                       '512x1024.py')) == []


def test_hrnet_splits_inside_layer1_and_says_why_not_further():
    model = zoo_backbone('mmseg::hrnet/fcn_hr18s_4xb2-40k_cityscapes-512x1024.py')
    assert block_paths(model) == ['backbone.layer1.0', 'backbone.layer1.1']
    assert resolve_boundaries(model, 2) == ['backbone.layer1.0']
    with pytest.raises(ValueError, match=r'K must be between 1 and 2 \(HRNet runs parallel '
                       r'branches .* cuts HRNet only between the blocks of layer1'):
        resolve_boundaries(model, 4)
