"""Local learning on an mmdet detector (Faster R-CNN R50-FPN): stage outputs
of the first module feed the FPN and must leave it detached; targets are the
real Cityscapes frame's instance boxes."""
import os.path as osp

import mmcv
import numpy as np
import pytest
import torch

from mmlocal.local import LocalLearner
from mmlocal.testing import (assert_grad_close, build_local, features, grads_of,
                                head_loss, local_step_grads, module_param_names)

DATA = osp.join(osp.dirname(osp.dirname(osp.abspath(__file__))), 'data', 'cityscapes')
FRAME = 'frankfurt_000000_000294'
CLASSES = {24: 0, 26: 1}  # Cityscapes person, car


def frame_batch(n: int = 2) -> dict:
    from mmdet.structures import DetDataSample
    from mmengine.structures import InstanceData
    img = mmcv.imread(osp.join(DATA, 'leftImg8bit/val/frankfurt', f'{FRAME}_leftImg8bit.png'),
                      channel_order='rgb')
    ids = mmcv.imread(osp.join(DATA, 'gtFine/val/frankfurt', f'{FRAME}_gtFine_instanceIds.png'),
                      flag='unchanged')
    boxes, labels = [], []
    for inst in np.unique(ids):
        if inst >= 1000 and inst // 1000 in CLASSES:
            ys, xs = np.nonzero(ids == inst)
            boxes.append([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1])
            labels.append(CLASSES[inst // 1000])
    assert len(boxes) == 7  # 4 persons, 3 cars in this frame
    h, w = img.shape[:2]
    samples = []
    for _ in range(n):
        s = DetDataSample(metainfo=dict(img_shape=(h, w), ori_shape=(h, w), pad_shape=(h, w),
                                        scale_factor=(1., 1.), batch_input_shape=(h, w)))
        s.gt_instances = InstanceData(bboxes=torch.tensor(boxes, dtype=torch.float32),
                                      labels=torch.tensor(labels))
        samples.append(s)
    x = torch.from_numpy(img).permute(2, 0, 1).contiguous()
    return dict(inputs=[x] * n, data_samples=samples)


@pytest.fixture(scope='module')
def detector():
    from mmengine.hub import get_config
    from mmengine.registry import init_default_scope
    from mmdet.registry import MODELS
    cfg = get_config('mmdet::faster_rcnn/faster-rcnn_r50_fpn_1x_coco.py')
    cfg.model.backbone.init_cfg = None
    cfg.model.roi_head.bbox_head.num_classes = 2
    init_default_scope('mmdet')
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    model.init_weights()
    return model


def test_detector_module1_isolated_from_fpn_and_heads(detector):
    model = detector
    wrapper = build_local(model, dict(boundaries=['backbone.layer3.0'], method=dict(type='DGL')),
                          lr=0.01)
    learner = LocalLearner.of(model)
    assert learner.task.num_classes == 2
    data = model.data_preprocessor(frame_batch(), True)
    got = local_step_grads(model, wrapper, data)
    params = dict(model.named_parameters())
    # frozen_stages=1 in the config: stem and layer1 do not train
    first = [n for n in module_param_names(model, learner.boundaries, 0)
             if params[n].requires_grad]
    assert any(n.startswith('backbone.layer2.') for n in first)
    # equal to module 1's own local loss alone (multi-hot targets of the boxes)
    targets = learner.adapter(data['inputs'], data['data_samples'], model.data_preprocessor)
    torch.testing.assert_close(targets.labels[0], torch.tensor([0.5, 0.5]))
    h = features(model, data['inputs'], None, learner.boundaries[0])
    want = grads_of(head_loss(learner.heads['m1'], h, targets), model, first)
    for n in first:
        assert_grad_close(got[n], want[n], msg=n)
    # and unchanged when the FPN, RPN and RoI head change
    with torch.no_grad():
        for n, p in model.named_parameters():
            if n.startswith(('neck.', 'rpn_head.', 'roi_head.')):
                p.add_(torch.randn_like(p) * 0.05)
    again = local_step_grads(model, wrapper, data)
    for n in first:
        assert_grad_close(again[n], got[n], msg=n)
    # the last module (layer3.1.. layer4, FPN, heads) does learn from the detection loss
    assert again['neck.fpn_convs.0.conv.weight'].abs().sum() > 0


def test_detector_trains_through_train_step(detector):
    from mmengine.optim import build_optim_wrapper  # noqa: F401
    model = detector
    wrapper = build_local(model, dict(num_modules=3, method=dict(type='InfoPro')), lr=0.01)
    log = model.train_step(frame_batch(), wrapper)
    assert all(torch.isfinite(v) for v in log.values())
    assert len(LocalLearner.of(model).heads) == 2
