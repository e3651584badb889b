"""mmlocal.apis.benchmark: memory, FLOPs and time of tiny real models'
training steps, on CPU."""
import textwrap

import numpy as np
import pytest
import torch

from mmlocal import apis

CLS_CFG = """
default_scope = 'mmpretrain'
model = dict(
    type='ImageClassifier',
    data_preprocessor=dict(
        num_classes=2, mean=[128.0] * 3, std=[64.0] * 3, to_rgb=True),
    backbone=dict(
        type='ResNet_CIFAR', depth=18, stem_channels={c}, base_channels={c}),
    neck=dict(type='GlobalAveragePooling'),
    head=dict(type='LinearClsHead', num_classes=2, in_channels={c8},
              loss=dict(type='CrossEntropyLoss')))
optim_wrapper = dict(optimizer=dict(type='SGD', lr=0.1, momentum=0.9))
train_dataloader = dict(
    batch_size=64, num_workers=4, persistent_workers=True,
    dataset=dict(
        type='CustomDataset', data_root={root!r}, with_label=True,
        pipeline=[dict(type='LoadImageFromFile'),
                  dict(type='RandomCrop', crop_size=16),
                  dict(type='PackInputs')]),
    sampler=dict(type='DefaultSampler', shuffle=True))
"""

SEG_CFG = """
default_scope = 'mmseg'
crop_size = (32, 48)
model = dict(
    type='EncoderDecoder',
    data_preprocessor=dict(
        type='SegDataPreProcessor', mean=[128.0] * 3, std=[64.0] * 3,
        bgr_to_rgb=True, pad_val=0, seg_pad_val=255, size=crop_size),
    backbone=dict(type='ResNetV1c', depth=18, base_channels=8,
                  stem_channels=8, out_indices=(3, )),
    decode_head=dict(
        type='FCNHead', in_channels=64, channels=16, num_convs=1,
        in_index=0, num_classes=3, norm_cfg=dict(type='BN'),
        loss_decode=dict(type='CrossEntropyLoss', loss_weight=1.0)),
    train_cfg=dict(), test_cfg=dict(mode='whole'))
optim_wrapper = dict(optimizer=dict(type='SGD', lr=0.01, momentum=0.9))
train_dataloader = dict(
    batch_size=2, num_workers=0,
    dataset=dict(type='CityscapesDataset', data_root='/does/not/exist',
                 data_prefix=dict(img_path='x', seg_map_path='y'),
                 pipeline=[]),
    sampler=dict(type='DefaultSampler', shuffle=True))
"""


def write_cls_config(path, channels=8, root='/does/not/exist'):
    path.write_text(
        CLS_CFG.format(c=channels, c8=channels * 8, root=str(root)))
    return str(path)


@pytest.fixture(scope='module')
def image_folder(tmp_path_factory):
    """Two class folders of real PNG files for mmpretrain's CustomDataset."""
    import cv2
    root = tmp_path_factory.mktemp('imgs')
    rng = np.random.default_rng(0)
    for cls in ('a', 'b'):
        (root / cls).mkdir()
        for i in range(4):
            img = rng.integers(0, 256, (20, 20, 3), dtype=np.uint8)
            cv2.imwrite(str(root / cls / f'{i}.png'), img)
    return root


def run(paths, batch_size, **kwargs):
    # one thread: a busy 2-core machine makes OpenMP threads wait seconds
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return apis.benchmark_configs([str(p) for p in paths], batch_size, 'cpu',
                                      log=None, **kwargs)
    finally:
        torch.set_num_threads(threads)


def test_two_configs_real_data(tmp_path, image_folder):
    e2e = write_cls_config(tmp_path / 'tiny_e2e.py', 8, image_folder)
    wide = write_cls_config(tmp_path / 'tiny_wide.py', 16, image_folder)
    res = run([wide, e2e], 4, iters=1, warmup=1)
    assert res['reference'] == 'tiny_e2e'  # not the first config: has _e2e
    assert res['settings']['inputs'] == 'dataset, first (16, 16)'  # crop
    rows = res['results']
    for r in rows.values():
        # parameters + momentum at the step start, then gradients and
        # activations on top of them
        assert r['baseline_mb'] == pytest.approx(2 * r['params_mb'], rel=0.01)
        assert r['peak_mb'] > r['baseline_mb'] + r['params_mb']
        assert r['peak_increase_mb'] > 0 and r['step_time_s'] > 0
    assert rows['tiny_wide']['peak_mb'] > rows['tiny_e2e']['peak_mb']
    assert res['machine']['torch'] and res['machine']['cpu']

    md = apis.markdown_table(res)
    assert ('| config | peak memory (MB) | vs tiny_e2e | step time (s) | '
            'vs tiny_e2e | GFLOPs/step | vs tiny_e2e |') in md
    assert '| tiny_e2e | ' in md and '| 1.00 |' in md
    ratio = rows['tiny_wide']['peak_mb'] / rows['tiny_e2e']['peak_mb']
    assert f'| {ratio:.2f} |' in md


def test_bigger_batch_bigger_peak_synthetic(tmp_path):
    cfg = write_cls_config(tmp_path / 'tiny_e2e.py', 8)  # no dataset
    small = run([cfg], 2, iters=1, warmup=0, synthetic=True)
    big = run([cfg], 8, iters=1, warmup=0, synthetic=True, repeat=2)
    s, b = small['results']['tiny_e2e'], big['results']['tiny_e2e']
    assert small['settings']['inputs'] == 'synthetic (16, 16)'  # crop size
    assert len(b['repeats']) == 2
    # gradients (one copy of the parameters) do not grow with the batch
    grads = s['params_mb']
    assert b['peak_increase_mb'] - grads > 3 * (s['peak_increase_mb'] - grads)
    assert b['baseline_mb'] == pytest.approx(s['baseline_mb'])


def test_segmentation_synthetic(tmp_path):
    cfg = tmp_path / 'tiny_seg_e2e.py'
    cfg.write_text(SEG_CFG)
    res = run([cfg], 2, iters=1, warmup=0, synthetic=True)
    r = res['results']['tiny_seg_e2e']
    assert res['settings']['inputs'] == 'synthetic (32, 48)'  # crop_size
    assert r['peak_mb'] > r['baseline_mb'] > r['params_mb'] > 0
    # --input-size also replaces the preprocessor's padding size
    small = run([cfg], 2, iters=1, warmup=0, synthetic=True, input_size=(16, 24))
    s = small['results']['tiny_seg_e2e']
    assert small['settings']['inputs'] == 'synthetic (16, 24)'
    assert s['peak_increase_mb'] < r['peak_increase_mb']


def test_missing_dataset_names_the_fix(tmp_path):
    cfg = write_cls_config(tmp_path / 'tiny_e2e.py', 8)
    with pytest.raises(RuntimeError, match='--synthetic'):
        run([cfg], 2, iters=1)


def test_helpers(tmp_path):
    assert apis.unique_names(['a/x_e2e.py', 'b/x_e2e.py', 'y.py']) == [
        'x_e2e', 'x_e2e#2', 'y'
    ]
    assert apis.pick_reference(['a', 'b_e2e', 'c_e2e'], '_e2e') == 1
    assert apis.pick_reference(['a', 'b'], '_e2e') == 0
    assert apis.pick_reference(['a', 'b'], 'b') == 1
    cfg = tmp_path / 'nosize.py'
    cfg.write_text(
        textwrap.dedent("""
        default_scope = 'mmpretrain'
        model = dict(type='ImageClassifier', head=dict(num_classes=3))
        train_dataloader = dict(dataset=dict(pipeline=[]))
        """))
    with pytest.raises(ValueError, match='--input-size'):
        apis.synthetic_batch(apis.load_config(str(cfg)), 2, None, 0)
    batch = apis.synthetic_batch(apis.load_config(str(cfg)), 2, (8, 12), 0)
    assert batch['inputs'][0].shape == (3, 8, 12)
    assert int(batch['data_samples'][1].gt_label) < 3


LOCAL_DELTA = """
_base_ = './tiny_e2e.py'
optim_wrapper = dict(
    type='LocalLearningOptimWrapper',
    constructor='LocalLearningOptimWrapperConstructor',
    local=dict(num_modules={k}, method=dict(
        type='DGL', classifier=dict(type='ConvAuxClassifier', arch='{arch}'))))
"""


def test_flops_count_the_work_of_a_step(tmp_path):
    """K=1 is E2E's work exactly; conv heads add work; GAP+FC heads add
    almost none while the detached module inputs skip input gradients."""
    e2e = write_cls_config(tmp_path / 'tiny_e2e.py', 8)
    paths = [e2e]
    for k, arch in ((1, '1c2f'), (4, '1c2f'), (4, '0c1f')):
        p = tmp_path / f'tiny_dgl_{arch}_k{k}.py'
        p.write_text(LOCAL_DELTA.format(k=k, arch=arch))
        paths.append(p)
    res = run(paths, 2, iters=1, warmup=0, synthetic=True)
    g = {n: r['gflops'] for n, r in res['results'].items()}
    assert g['tiny_e2e'] > 0
    assert g['tiny_dgl_1c2f_k1'] == g['tiny_e2e']
    assert g['tiny_dgl_1c2f_k4'] > 1.05 * g['tiny_e2e']
    assert g['tiny_dgl_0c1f_k4'] < g['tiny_e2e']  # 3 skipped input grads
    # a batch twice as large is twice the work
    big = run([e2e], 4, iters=1, warmup=0, synthetic=True)
    assert big['results']['tiny_e2e']['gflops'] == pytest.approx(
        2 * g['tiny_e2e'], rel=1e-6)
