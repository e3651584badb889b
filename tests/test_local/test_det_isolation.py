"""Local learning on mmdet detectors (Faster R-CNN, RetinaNet and Mask R-CNN
R50-FPN): stage outputs of the first module feed the FPN and must leave it
detached; targets are the real Cityscapes frame's instance boxes (and masks).

* module 1's gradients equal its own box-aware local loss alone and do not
  change when the FPN, RPN, RoI / dense heads or the later blocks change;
* the image-level multi-hot signal stays available (``task='detection-multihot'``);
* K=1 equals E2E for a detector;
* InfoPro + HPFF (cascade windows, PFF on the dense outputs) trains.
"""

import pytest
import torch

from mmlocal.local import LocalLearner
from mmlocal.testing.detection import frame_batch
from mmlocal.testing import (assert_grad_close, build_local, features, grads_of,
                                head_loss, local_step_grads, module_param_names)



ZOO = {
    'faster-rcnn': ('mmdet::faster_rcnn/faster-rcnn_r50_fpn_1x_coco.py', 'roi_head.bbox_head'),
    'retinanet': ('mmdet::retinanet/retinanet_r50_fpn_1x_coco.py', 'bbox_head'),
    'mask-rcnn': ('mmdet::cityscapes/mask-rcnn_r50_fpn_1x_cityscapes.py',
                  'roi_head.bbox_head', 'roi_head.mask_head'),
}


def build_detector(name: str, seed: int = 0):
    from mmengine.hub import get_config
    from mmengine.registry import init_default_scope
    from mmdet.registry import MODELS
    config, *heads = ZOO[name]
    cfg = get_config(config)
    cfg.model.backbone.init_cfg = None
    for head in heads:
        node = cfg.model
        for key in head.split('.'):
            node = node[key]
        node.num_classes = 2
    init_default_scope('mmdet')
    torch.manual_seed(seed)
    model = MODELS.build(cfg.model)
    model.init_weights()
    model.train()  # as the Runner: norm_eval=True keeps the backbone's BN in eval mode
    return model


@pytest.fixture(scope='module')
def detector():
    return build_detector('faster-rcnn')


def perturb(model, prefixes) -> None:
    with torch.no_grad():
        for n, p in model.named_parameters():
            if n.startswith(prefixes):
                p.add_(torch.randn_like(p) * 0.05)


@pytest.mark.parametrize('name,later', [
    ('faster-rcnn', ('neck.', 'rpn_head.', 'roi_head.', 'backbone.layer3.', 'backbone.layer4.')),
    ('retinanet', ('neck.', 'bbox_head.', 'backbone.layer3.', 'backbone.layer4.')),
    ('mask-rcnn', ('neck.', 'rpn_head.', 'roi_head.', 'backbone.layer3.', 'backbone.layer4.')),
])
def test_module1_isolated_from_fpn_heads_and_later_blocks(name, later):
    model = build_detector(name)
    wrapper = build_local(model, dict(boundaries=['layer2.3', 'layer3.2'],
                                      method=dict(type='DGL')), lr=0.01)
    learner = LocalLearner.of(model)
    assert learner.task.task == 'detection' and learner.task.num_classes == 2
    assert [f.stride for f in learner.features] == [8, 16]
    head = learner.heads['m1']
    assert type(head).__name__ == 'DetClassifierHead'
    assert head.dense_head.prior_generator.strides == [(8, 8)]
    data = model.data_preprocessor(frame_batch(masks=name == 'mask-rcnn'), True)
    torch.manual_seed(0)
    got = local_step_grads(model, wrapper, data)
    params = dict(model.named_parameters())
    # frozen_stages=1 in the config: stem and layer1 do not train
    first = [n for n in module_param_names(model, learner.boundaries, 0)
             if params[n].requires_grad]
    assert any(n.startswith('backbone.layer2.') for n in first)
    # equal to module 1's own box-aware loss alone, recomputed independently
    targets = learner.adapter(data['inputs'], data['data_samples'], model.data_preprocessor)
    assert [len(i) for i in targets.instances] == [7, 7]
    assert targets.metas[0]['batch_input_shape'] == (128, 256)
    h = features(model, data['inputs'], None, learner.boundaries[0])
    want = grads_of(head_loss(head, h, targets), model, first)
    for n in first:
        assert any(want[n].abs().sum() > 0 for n in first)
        assert_grad_close(got[n], want[n], msg=n)
    # unchanged when the FPN, RPN / RoI / dense heads and the later blocks change
    perturb(model, later)
    torch.manual_seed(0)
    again = local_step_grads(model, wrapper, data)
    for n in first:
        assert_grad_close(again[n], got[n], msg=n)
    # the last module (layer3.3.. layer4, FPN, heads) learns from the detection loss
    assert again['neck.fpn_convs.0.conv.weight'].abs().sum() > 0
    assert again['backbone.layer4.0.conv1.weight'].abs().sum() > 0
    if name == 'mask-rcnn':  # the instance masks train the mask head
        assert again['roi_head.mask_head.conv_logits.weight'].abs().sum() > 0


def test_image_level_multihot_option(detector):
    model = detector
    wrapper = build_local(model, dict(boundaries=['backbone.layer3.0'], method=dict(type='DGL'),
                                      task='detection-multihot'), lr=0.01)
    learner = LocalLearner.of(model)
    assert learner.task.num_classes == 2
    assert type(learner.heads['m1']).__name__ == 'ClassifierHead'
    data = model.data_preprocessor(frame_batch(), True)
    got = local_step_grads(model, wrapper, data)
    params = dict(model.named_parameters())
    first = [n for n in module_param_names(model, learner.boundaries, 0)
             if params[n].requires_grad]
    # equal to module 1's own local loss alone (multi-hot targets of the boxes)
    targets = learner.adapter(data['inputs'], data['data_samples'], model.data_preprocessor)
    torch.testing.assert_close(targets.labels[0], torch.tensor([0.5, 0.5]))
    h = features(model, data['inputs'], None, learner.boundaries[0])
    want = grads_of(head_loss(learner.heads['m1'], h, targets), model, first)
    for n in first:
        assert_grad_close(got[n], want[n], msg=n)


def test_k1_equals_e2e():
    """K=1: no local head, the detector's own losses and gradients."""
    data_raw = frame_batch()
    plain = build_detector('faster-rcnn')
    data = plain.data_preprocessor(data_raw, True)
    torch.manual_seed(3)  # the RPN and RoI samplers draw at random
    loss, log = plain.parse_losses(plain(**data, mode='loss'))
    loss.backward()
    want = {n: p.grad.clone() for n, p in plain.named_parameters() if p.grad is not None}

    model = build_detector('faster-rcnn')
    wrapper = build_local(model, dict(num_modules=1, method=dict(type='DGL')), lr=0.01)
    assert LocalLearner.of(model).boundaries == [] and len(LocalLearner.of(model).heads) == 0
    data = model.data_preprocessor(data_raw, True)
    torch.manual_seed(3)
    got = local_step_grads(model, wrapper, data)
    assert set(got) == set(want)
    for n in want:
        assert_grad_close(got[n], want[n], msg=n)


def test_infopro_hpff_trains_through_train_step(detector):
    model = detector
    wrapper = build_local(model, dict(
        boundaries=['layer2.3', 'layer3.2', 'layer3.5'],
        method=dict(type='InfoPro', recon_weights=(1.5, 1.5), task_weights=(1., 1.)),
        hilo=dict(cascade=2), pff=dict(patches=2)), lr=0.01)
    learner = LocalLearner.of(model)
    assert sorted(learner.heads) == ['m1', 'm2', 'm3']
    assert sorted(learner.cascade_heads) == ['m2', 'm3']
    before = model.backbone.layer2[0].downsample[0].weight.detach().clone()
    log = model.train_step(frame_batch(), wrapper)
    assert all(torch.isfinite(v) for v in log.values())
    assert {'loss_rpn_cls', 'loss_rpn_bbox', 'loss_cls', 'loss_bbox'} <= set(log)
    from mmengine.logging import MessageHub
    local = {k: torch.tensor(v.current()) for k, v in
             MessageHub.get_current_instance().log_scalars.items() if k.startswith('train/local.')}
    for key in ('m1.loss_cls', 'm1.loss_bbox', 'm1.loss_recon', 'm3.cascade.loss_cls'):
        assert any(k.endswith(key) for k in local), (key, sorted(local))
    assert all(torch.isfinite(v) for v in local.values())
    assert not torch.equal(before, model.backbone.layer2[0].downsample[0].weight)
