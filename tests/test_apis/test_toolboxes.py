"""The toolbox registry: one class per scope, the generic one for others."""
import os.path as osp

import pytest
import torch
from mmengine.config import Config

from mmlocal import apis
from mmlocal.registry import TOOLBOXES

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CIFAR_CONFIG = osp.join(ROOT, 'configs', 'resnet32_cifar10_e2e.py')
SEG_CONFIG = osp.join(ROOT, 'configs', 'deeplabv3_r101_cityscapes_e2e.py')


def test_registry_is_keyed_by_scope():
    assert {'mmseg', 'mmpretrain', 'mmdet'} <= set(TOOLBOXES.module_dict)
    assert isinstance(apis.get_toolbox('mmseg'), apis.SegToolbox)
    assert isinstance(apis.get_toolbox(Config(dict(default_scope='mmdet'))), apis.DetToolbox)
    assert isinstance(apis.get_toolbox(Config.fromfile(CIFAR_CONFIG)), apis.PretrainToolbox)
    generic = apis.get_toolbox(Config(dict(default_scope='mmocr')))
    assert type(generic) is apis.Toolbox and generic.scope == 'mmocr'
    assert type(apis.get_toolbox(Config())) is apis.Toolbox


def test_default_collate_only_for_mmpretrain():
    cfg = Config.fromfile(CIFAR_CONFIG)
    apis.set_default_collate(cfg)
    assert cfg.train_dataloader.collate_fn == dict(type='default_collate')
    assert cfg.test_dataloader.collate_fn == dict(type='default_collate')
    cfg = Config(dict(default_scope='mmseg', train_dataloader=dict(batch_size=2)))
    apis.set_default_collate(cfg)
    assert 'collate_fn' not in cfg.train_dataloader


def test_tta():
    cfg = Config.fromfile(CIFAR_CONFIG)  # mmpretrain: its default flip TTA
    apis.enable_tta(cfg)
    assert cfg.model.type == 'mmpretrain.AverageClsScoreTTA'
    assert cfg.model.module.type == 'ImageClassifier'
    flips = cfg.test_dataloader.dataset.pipeline[-1]
    assert flips.type == 'TestTimeAug'
    assert [t['prob'] for t in flips.transforms[0]] == [1., 0.]

    cfg = Config(dict(default_scope='mmseg', model=dict(type='EncoderDecoder'),
                      test_dataloader=dict(dataset=dict(pipeline=[]))))
    with pytest.raises(RuntimeError, match='tta_model and tta_pipeline'):
        apis.enable_tta(cfg)
    if osp.isfile(SEG_CONFIG):  # mmseg: the config's own multi-scale TTA
        cfg = Config.fromfile(SEG_CONFIG)
        apis.enable_tta(cfg)
        assert cfg.model.type == 'SegTTAModel'
        assert cfg.model.module.type == 'EncoderDecoder'


def test_visualization():
    cfg = Config.fromfile(CIFAR_CONFIG)
    apis.enable_visualization(cfg, 'vis')
    hook = cfg.default_hooks.visualization
    assert hook.enable and hook.out_dir == 'vis' and hook.interval == 1

    cfg = Config(dict(default_scope='mmdet', default_hooks=dict(
        visualization=dict(type='DetVisualizationHook'))))
    apis.enable_visualization(cfg, 'vis')
    assert cfg.default_hooks.visualization == dict(
        type='DetVisualizationHook', draw=True, test_out_dir='vis')

    cfg = Config(dict(default_scope='mmseg', visualizer=dict(type='SegLocalVisualizer'),
                      default_hooks=dict(visualization=dict(type='SegVisualizationHook'))))
    apis.enable_visualization(cfg, 'vis')
    assert cfg.default_hooks.visualization.draw and cfg.visualizer.save_dir == 'vis'
    with pytest.raises(RuntimeError, match='visualization hook'):
        apis.enable_visualization(Config(dict(default_scope='mmseg')), 'vis')


def test_dump():
    from mmdet.evaluation import DumpDetResults
    from mmengine.evaluator import DumpResults
    cfg = Config.fromfile(CIFAR_CONFIG)
    with pytest.raises(ValueError, match='.pkl'):
        apis.enable_dump(cfg, 'preds.json')
    assert type(apis.enable_dump(cfg, 'preds.pkl')) is DumpResults
    assert type(apis.enable_dump(Config(dict(default_scope='mmdet')), 'p.pkl')) \
        is DumpDetResults
    cfg = Config(dict(default_scope='mmseg', test_evaluator=[dict(type='IoUMetric')]))
    assert apis.enable_dump(cfg, 'maps') is None
    assert cfg.test_evaluator[0] == dict(type='IoUMetric', output_dir='maps',
                                         keep_results=True)


def test_synthetic_samples_per_toolbox():
    g = torch.Generator().manual_seed(0)
    cls = Config(dict(default_scope='mmpretrain', model=dict(head=dict(num_classes=3))))
    samples = apis.get_toolbox(cls).synthetic_samples(cls, 4, (8, 12), g)
    assert all(0 <= int(s.gt_label) < 3 for s in samples)
    assert samples[0].img_shape == (8, 12)
    seg = Config(dict(default_scope='mmseg', model=dict(decode_head=dict(num_classes=5))))
    samples = apis.get_toolbox(seg).synthetic_samples(seg, 2, (8, 12), g)
    assert samples[1].gt_sem_seg.data.shape == (1, 8, 12)
    assert int(samples[1].gt_sem_seg.data.max()) < 5
    det = Config(dict(default_scope='mmdet', model=dict(bbox_head=dict(num_classes=4))))
    samples = apis.get_toolbox(det).synthetic_samples(det, 2, (40, 60), g)
    boxes = samples[0].gt_instances.bboxes
    assert boxes.shape == (3, 4) and int(samples[1].gt_instances.labels.max()) < 4
    assert (boxes[:, :2] >= 0).all() and (boxes[:, 2] <= 60).all() and (boxes[:, 3] <= 40).all()
    assert (boxes[:, 2:] > boxes[:, :2]).all()
    mask = Config(dict(default_scope='mmdet', model=dict(roi_head=dict(mask_head=dict()))))
    with pytest.raises(ValueError, match='masks'):
        apis.synthetic_batch(mask, 2, (8, 8))
    with pytest.raises(ValueError, match="not default_scope 'mmaction'"):
        apis.synthetic_batch(Config(dict(default_scope='mmaction', model=dict())), 2, (8, 8))
