"""Splits: the papers' presets, balancing, presets for every backbone family."""
import pytest

from mmlocal.testing import build_classifier
from mmlocal.local.split import balanced_indices, block_paths, resolve_boundaries
from mmlocal.local import LocalLearner


def test_resnet32_presets_reproduce_the_papers():
    model = build_classifier(depth=32)
    paths = block_paths(model)
    assert paths[0] == 'backbone.stem' and len(paths) == 16
    assert resolve_boundaries(model, 2) == ['backbone.layer2.1']
    assert resolve_boundaries(model, 4) == ['backbone.layer1.2', 'backbone.layer2.1',
                                            'backbone.layer3.0']
    k16 = resolve_boundaries(model, 16)
    assert k16[0] == 'backbone.stem' and k16[-1] == 'backbone.layer3.3' and len(k16) == 15
    for k in range(1, 17):
        assert len(resolve_boundaries(model, k)) == k - 1


def test_resnet110_presets():
    model = build_classifier(depth=110)
    assert resolve_boundaries(model, 2) == ['backbone.layer2.8']
    k55 = resolve_boundaries(model, 55)
    assert len(k55) == 54 and k55[0] == 'backbone.stem' and k55[-1] == 'backbone.layer3.16'
    assert len(resolve_boundaries(model, 32)) == 31
    assert resolve_boundaries(model, 3, split='infopro-balanced') == [
        'backbone.layer1.9', 'backbone.layer2.2']
    for k in (5, 20, 40):  # no preset: balanced by blocks
        assert len(resolve_boundaries(model, k)) == k - 1


def test_balanced_indices():
    assert balanced_indices([1] * 8, 4) == [1, 3, 5]
    assert balanced_indices([4, 1, 1, 1, 1], 2) == [0]


def test_activations_split_uses_the_probe_costs():
    from mmlocal.testing import build_local
    model = build_classifier(depth=20)
    build_local(model, dict(num_modules=3, split='activations', method=dict(type='DGL'),
                            probe_size=(32, 32)))
    bounds = LocalLearner.of(model).boundaries
    by_blocks = resolve_boundaries(model, 3, split='blocks')
    # early blocks have 4x the activations of the last stage's: the
    # activations split puts its boundaries earlier than the equal-blocks split
    paths = block_paths(model)
    assert [paths.index(b) for b in bounds] < [paths.index(b) for b in by_blocks]


def test_mmseg_and_mmpretrain_backbones():
    from mmengine.registry import init_default_scope
    from mmpretrain.registry import MODELS as PRETRAIN
    from mmseg.registry import MODELS as SEG
    init_default_scope('mmseg')
    seg_backbone = SEG.build(dict(type='ResNetV1c', depth=50))
    import torch.nn as nn
    holder = nn.Module()
    holder.backbone = seg_backbone
    paths = block_paths(holder)
    assert paths[0] == 'backbone.maxpool' and len(paths) == 1 + 16
    assert resolve_boundaries(holder, boundaries=['layer3.0'])[0] == 'backbone.layer3.0'
    init_default_scope('mmpretrain')
    holder.backbone = PRETRAIN.build(dict(type='VisionTransformer', arch='deit-tiny',
                                          img_size=32, patch_size=16))
    assert len(block_paths(holder)) == 12
    assert len(resolve_boundaries(holder, 12)) == 11
    with pytest.raises(ValueError, match='between 1 and 12'):
        resolve_boundaries(holder, 13)


def test_splits_and_presets_are_registry_lookups():
    from mmlocal.registry import SPLIT_PRESETS, SPLITS
    for name in ('auto', 'blocks', 'memory', 'activations', 'infopro', 'infopro-balanced',
                 'hpff-imagenet'):
        assert callable(SPLITS.get(name)), name
    assert SPLIT_PRESETS.get('CifarResNet') is SPLITS.get('infopro')
    model = build_classifier(depth=32)
    with pytest.raises(ValueError, match="unknown split 'os'.*'memory'"):
        resolve_boundaries(model, 4, split='os')  # an importable name is no split
    with pytest.raises(ValueError, match="'hpff-imagenet' has no K=3"):
        resolve_boundaries(model, 3, split='hpff-imagenet')
