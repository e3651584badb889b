"""Box-aware local heads (mmdet dense heads on one level), on the real
Cityscapes frame's instance boxes.

* the head's loss is mmdet's own: equal to the dense head's public
  ``loss(x, data_samples)`` path on the same feature;
* priors follow the stride (RetinaNet 4s * 2^(k/3), RPN 8s, FCOS one range);
* PFF: each patch's dense outputs are placed in its region of the feature
  grid and the loss is taken on the fused maps (gradients checked against an
  independent tiling with ``torch.cat``);
* bad configurations fail with a message naming the fix.
"""

import pytest
import torch

from mmlocal.testing.detection import frame_boxes
import torch.nn.functional as F

from mmlocal.local.head_runner import patch_slices, run_head_patched



def frame_targets(n: int = 2):
    """Real image (B, 3, H, W) in [0, 1] and LocalTargets with its boxes."""
    from mmengine.structures import InstanceData

    from mmlocal.local.targets import LocalTargets
    img, boxes, labels = frame_boxes()
    h, w = img.shape[:2]
    x = torch.from_numpy(img).permute(2, 0, 1).float().div(255).expand(n, -1, -1, -1)
    inst = InstanceData(bboxes=torch.tensor(boxes, dtype=torch.float32),
                        labels=torch.tensor(labels))
    meta = dict(img_shape=(h, w), pad_shape=(h, w), batch_input_shape=(h, w),
                ori_shape=(h, w), scale_factor=(1., 1.))
    targets = LocalTargets(inputs=x.contiguous(), instances=[inst] * n, metas=[meta] * n)
    return targets


def real_feature(x: torch.Tensor, stride: int, channels: int) -> torch.Tensor:
    """A feature of the real image at ``stride``: fixed random conv of the pooled image."""
    g = torch.Generator().manual_seed(0)
    w = torch.randn(channels, 3, 3, 3, generator=g) * 0.5
    return F.relu(F.conv2d(F.avg_pool2d(x, stride), w, padding=1))


def build(classifier: dict, stride: int = 8, channels: int = 32, cls='DetClassifierHead',
          **kw):
    from mmlocal.registry import MODELS
    torch.manual_seed(0)
    return MODELS.build(dict(type=cls, in_channels=channels, num_classes=2,
                             classifier=classifier, stride=stride, **kw))


def samples_of(targets):
    from mmdet.structures import DetDataSample
    out = []
    for inst, meta in zip(targets.instances, targets.metas):
        s = DetDataSample(metainfo=meta)
        s.gt_instances = inst
        out.append(s)
    return out


@pytest.mark.parametrize('kind', ['RetinaHead', 'RPNHead', 'FCOSHead'])
def test_loss_is_mmdets_own(kind):
    targets = frame_targets()
    head = build(dict(type=kind, stacked_convs=1) if kind != 'RPNHead' else dict(type=kind))
    feat = real_feature(targets.inputs, 8, 32).requires_grad_()
    losses = head.loss(head(feat, tuple(targets.inputs.shape[-2:])), targets)
    assert all(torch.isfinite(v) and v > 0 for v in losses.values()), losses
    samples = samples_of(targets)
    if kind == 'RPNHead':  # class-agnostic, as TwoStageDetector.loss does it
        for s in samples:
            s.gt_instances = s.gt_instances.clone()
            s.gt_instances.labels = torch.zeros_like(s.gt_instances.labels)
    torch.manual_seed(1)  # RPN's random sampler
    want = head.dense_head.loss((feat, ), samples)
    torch.manual_seed(1)
    got = head.loss(head(feat, tuple(targets.inputs.shape[-2:])), targets)
    assert set(got) == set(want)
    for k in want:
        torch.testing.assert_close(got[k], sum(want[k]) if isinstance(want[k], list)
                                   else want[k])
    sum(got.values()).backward()
    assert feat.grad is not None and feat.grad.abs().sum() > 0


@pytest.mark.parametrize('stride', [4, 8, 16, 32])
def test_priors_follow_the_stride(stride):
    retina = build(dict(type='RetinaHead'), stride=stride).dense_head
    gen = retina.prior_generator
    assert gen.num_levels == 1 and gen.strides == [(stride, stride)]
    # RetinaNet's level rule: octave base scale 4, 3 scales per octave
    assert gen.octave_base_scale == 4 and gen.base_sizes == [stride]
    anchors = gen.gen_base_anchors()[0]
    sides = ((anchors[:, 2] - anchors[:, 0]) * (anchors[:, 3] - anchors[:, 1])).sqrt()
    want = torch.tensor([4. * stride * 2 ** (k / 3) for k in range(3)])
    # 3 ratios x 3 scales, each of area (4s * 2^(k/3))^2
    torch.testing.assert_close(sides.view(3, 3), want.expand(3, 3), rtol=1e-4, atol=1e-3)
    assert retina.num_classes == 2 and retina.stacked_convs == 4  # zoo config, unless set
    rpn = build(dict(type='RPNHead'), stride=stride).dense_head
    assert rpn.prior_generator.strides == [(stride, stride)]
    torch.testing.assert_close(rpn.prior_generator.scales, torch.tensor([8.]))
    fcos = build(dict(type='FCOSHead'), stride=stride).dense_head
    assert fcos.prior_generator.strides == [(stride, stride)] and fcos.regress_ranges[0][0] == -1
    assert fcos.regress_ranges[0][1] >= 1e8  # every object on this one level


def test_infopro_head_reconstructs_and_skips_a_zero_task_weight():
    targets = frame_targets()
    feat = real_feature(targets.inputs, 8, 32)
    size = tuple(targets.inputs.shape[-2:])
    head = build(dict(type='RetinaHead', stacked_convs=1), cls='DetInfoProHead',
                 decoder=dict(type='UpsampleDecoder'), recon_weight=1.5, task_weight=1.)
    preds = head(feat, size)
    assert preds['recon'].shape[-2:] == size
    losses = head.loss(preds, targets)
    assert set(losses) == {'loss_cls', 'loss_bbox', 'loss_recon'}
    torch.testing.assert_close(losses['loss_recon'], 1.5 * F.binary_cross_entropy(
        preds['recon'], targets.image01))
    head.loss_weight = 0.
    preds = head(feat, size)
    assert set(preds) == {'recon'} and set(head.loss(preds, targets)) == {'loss_recon'}


@pytest.mark.parametrize('n', [2, 3])
def test_pff_tiles_dense_outputs_on_the_feature_grid(n):
    targets = frame_targets()
    stride = 8
    head = build(dict(type='RetinaHead', stacked_convs=1), stride=stride)
    feat = real_feature(targets.inputs, stride, 32)
    size = tuple(targets.inputs.shape[-2:])
    H, W = feat.shape[-2:]
    assert head.FUSION == dict(cls_score='grid', bbox_pred='grid')

    leaf = feat.clone().requires_grad_()
    got = run_head_patched(head, leaf, targets, size, 1., lambda loss: loss.backward(), n)
    head_grads = {k: p.grad.clone() for k, p in head.named_parameters()}
    head.zero_grad()

    # independent: every patch's outputs, tiled with torch.cat, loss on the tiling
    ref = feat.clone().requires_grad_()
    rows, cols = patch_slices(H, n, size[0]), patch_slices(W, n, size[1])
    tiles = {}
    for name in head.outputs:
        tiles[name] = torch.cat([torch.cat([head(ref[..., r, c], size)[name]
                                            for c, _ in cols], dim=-1)
                                 for r, _ in rows], dim=-2)
        assert tiles[name].shape[-2:] == (H, W)
    want = head.loss(tiles, targets)
    sum(want.values()).backward()
    for k in want:
        torch.testing.assert_close(got[k], want[k].detach())
    torch.testing.assert_close(leaf.grad, ref.grad, rtol=1e-4, atol=1e-7)
    for k, p in head.named_parameters():
        torch.testing.assert_close(head_grads[k], p.grad, rtol=1e-4, atol=1e-7, msg=k)


def test_errors_name_the_fix():
    with pytest.raises(ValueError, match="detection-multihot"):
        build(dict(type='ImageNetAuxClassifier'))
    with pytest.raises(ValueError, match='not defined for box detection'):
        build(dict(type='RetinaHead'), task_loss='contrast')
    from mmlocal.local.methods import FeatureInfo, PredSim, TaskInfo
    with pytest.raises(ValueError, match="for detection"):
        PredSim().build_head(FeatureInfo(512, (8, 8), 8), TaskInfo('detection', 2),
                             PredSim().loss_weights(0.))
    head = build(dict(type='RetinaHead', stacked_convs=1))
    targets = frame_targets()
    targets.instances = None
    feat = real_feature(targets.inputs, 8, 32)
    with pytest.raises(ValueError, match="local.task='detection'"):
        head.loss(head(feat, (128, 256)), targets)
