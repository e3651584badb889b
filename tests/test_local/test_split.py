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


def test_memory_balanced_split_uses_measured_costs():
    from mmlocal.testing import build_local
    model = build_classifier(depth=20)
    build_local(model, dict(num_modules=3, split='memory', method=dict(type='DGL'),
                            probe_size=(32, 32)))
    bounds = LocalLearner.of(model).boundaries
    by_blocks = resolve_boundaries(model, 3, split='blocks')
    # early blocks have 4x the activations of the last stage's: the memory
    # split puts its boundaries earlier than the equal-blocks split
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
    for name in ('auto', 'blocks', 'memory', 'infopro', 'infopro-balanced', 'hpff-imagenet'):
        assert callable(SPLITS.get(name)), name
    assert SPLIT_PRESETS.get('CifarResNet') is SPLITS.get('infopro')
    model = build_classifier(depth=32)
    with pytest.raises(ValueError, match="unknown split 'os'.*'memory'"):
        resolve_boundaries(model, 4, split='os')  # an importable name is no split
    with pytest.raises(ValueError, match="'hpff-imagenet' has no K=3"):
        resolve_boundaries(model, 3, split='hpff-imagenet')


def _brute_force(costs, k):
    import itertools
    from mmlocal.local.split import module_peaks
    n = len(costs.paths)
    return min(max(module_peaks(costs, list(c) + [n - 1]))
               for c in itertools.combinations(range(n - 1), k - 1))


@pytest.mark.parametrize('window', [1, 2, 3])
def test_peak_balanced_split_is_the_minimax(window):
    import random
    from mmlocal.local.split import PeakCosts, module_peaks, peak_balanced_indices
    rng = random.Random(window)
    for trial in range(5):
        n = rng.randint(5, 9)
        costs = PeakCosts([f'b{i}' for i in range(n)],
                          graph=[rng.uniform(1, 10) for _ in range(n)],
                          params=[rng.uniform(0, 2) for _ in range(n)],
                          head=[rng.uniform(0, 8) for _ in range(n - 1)],
                          tail=rng.uniform(0, 20), window=window)
        for k in range(1, min(n, 5) + 1):
            cuts = peak_balanced_indices(costs, k, tolerance=0.)
            assert len(cuts) == k - 1 and cuts == sorted(set(cuts))
            best = max(module_peaks(costs, cuts + [n - 1]))
            assert best == pytest.approx(_brute_force(costs, k))
            even = peak_balanced_indices(costs, k, tolerance=0.05)
            assert max(module_peaks(costs, even + [n - 1])) <= best * 1.05 + 1e-9


def test_module_peaks_hold_the_window_grads_and_heads():
    from mmlocal.local.split import PeakCosts, module_peaks
    costs = PeakCosts(['a', 'b', 'c', 'd'], graph=[8., 4., 2., 1.], params=[1., 1., 1., 1.],
                      head=[10., 20., 30.], tail=100.)
    # module 1 = a, 2 = b c, 3 = d: graphs + earlier gradients + heads / tail
    assert module_peaks(costs, [0, 2, 3]) == [8 + 10, 6 + 1 + 30, 1 + 3 + 100]
    costs.window = 2  # HiLo k=2: the previous module's graph is alive too
    assert module_peaks(costs, [0, 2, 3]) == [8 + 10, 14 + 1 + 30, 7 + 3 + 100]


def _real_step_peak(model, boundaries, batch, **local):
    """Allocator peak increase of one real local train_step (the second of two)."""
    from mmlocal.testing import build_local
    from mmlocal.utils.memory import PeakMemoryTracker
    wrapper = build_local(model, dict(boundaries=boundaries, **local))
    with PeakMemoryTracker('cpu') as tracker:
        model.train_step(batch, wrapper)
        tracker.reset_peak()
        model.train_step(batch, wrapper)
    LocalLearner.of(model).remove()
    return tracker.stats.peak_increase_bytes


@pytest.mark.parametrize('hilo', [None, dict(cascade=2)])
def test_measured_peaks_predict_the_real_step(hilo):
    """PeakCosts on a real CIFAR batch: the graph bytes are what the allocator
    holds after a training forward, the predicted largest module peak is the
    real step's peak within 25%, and the peak-balanced split's real peak is
    not above the equal-blocks split's."""
    import torch
    from mmlocal.testing import cifar_batch
    from mmlocal.local.split import (measure_peak_costs, module_peaks,
                                     peak_balanced_indices)
    from mmlocal.utils.memory import PeakMemoryTracker
    model = build_classifier(depth=20)
    batch = cifar_batch(64)
    data = model.data_preprocessor(batch, True)
    method = dict(type='InfoPro')
    state = {k: v.clone() for k, v in model.state_dict().items()}
    costs = measure_peak_costs(model, data['inputs'], data['data_samples'], method=method,
                               hilo=hilo)
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in state.items())  # BN restored
    assert costs.window == (2 if hilo else 1) and len(costs.head) == len(costs.paths) - 1
    with PeakMemoryTracker('cpu') as tracker:
        tracker.reset_peak()
        out = model.backbone(data['inputs'])
    held = tracker.stats.end_increase_bytes
    del out
    assert sum(costs.graph) == pytest.approx(held, rel=0.1)

    k = 4
    cuts = peak_balanced_indices(costs, k)
    best = [costs.paths[i] for i in cuts]
    blocks = resolve_boundaries(model, k, split='blocks')
    local = dict(method=method, hilo=hilo) if hilo else dict(method=method)
    real_best = _real_step_peak(model, best, batch, **local)
    real_blocks = _real_step_peak(model, blocks, batch, **local)
    predicted = max(module_peaks(costs, cuts + [len(costs.paths) - 1]))
    assert predicted == pytest.approx(real_best, rel=0.25)
    assert real_best <= real_blocks * 1.02


def _seg_model_and_batch(size=(64, 128), depth=18):
    """A real mmseg DeepLabV3 (ResNetV1c, ASPP, FCN auxiliary head) and a
    preprocessed batch of the bundled Cityscapes-format images."""
    import torch
    from mmengine.config import Config
    from mmengine.registry import init_default_scope
    from mmseg.registry import MODELS
    init_default_scope('mmseg')
    cfg = Config.fromfile('configs/deeplabv3_r101_cityscapes_e2e.py')
    model_cfg = cfg.model
    model_cfg.pretrained = None
    model_cfg.data_preprocessor.size = size
    model_cfg.backbone.update(depth=depth)
    if depth < 50:
        model_cfg.decode_head.update(in_channels=512, channels=64)
        model_cfg.auxiliary_head.update(in_channels=256, channels=32)
    torch.manual_seed(0)
    model = MODELS.build(model_cfg)
    from mmengine.model import revert_sync_batchnorm
    model = revert_sync_batchnorm(model)
    from test_local.test_seg_isolation import cityscapes_batch
    data = model.data_preprocessor(cityscapes_batch(2, size), True)
    return model, data['inputs'], data['data_samples']
