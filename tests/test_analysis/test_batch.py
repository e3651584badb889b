"""The synthetic training batch of split='memory': the task's targets, the
training crop, through the model's own preprocessor."""
import pytest
import torch
import torch.nn as nn

from mmlocal.analysis.batch import (detection_samples, segmentation_samples,
                                    synthetic_training_batch, training_input_size)
from mmlocal.local.config import LocalConfigError
from mmlocal.testing import build_classifier


def test_a_classification_batch_trains_the_model():
    model = build_classifier(depth=20)
    data = synthetic_training_batch(model, 'classification', 10, 4, (32, 32))
    x = data['inputs']
    assert x.shape == (4, 3, 32, 32) and x.dtype == torch.float32
    assert abs(float(x.mean())) < 0.5  # normalised by the preprocessor
    labels = [int(s.gt_label) for s in data['data_samples']]
    assert all(0 <= y < 10 for y in labels)
    losses = model.loss(x, data['data_samples'])
    assert torch.isfinite(losses['loss'])
    again = synthetic_training_batch(model, 'classification', 10, 4, (32, 32))
    assert torch.equal(again['inputs'], x)  # seeded: every rank draws the same batch


def test_segmentation_and_box_targets():
    g = torch.Generator().manual_seed(0)
    seg = segmentation_samples(19, 2, (24, 40), g)
    assert seg[0].gt_sem_seg.data.shape == (1, 24, 40)
    assert int(seg[0].gt_sem_seg.data.max()) < 19 and seg[0].metainfo['img_shape'] == (24, 40)
    det = detection_samples(3, 2, (60, 80), g)
    boxes = det[1].gt_instances.bboxes
    assert boxes.shape == (3, 4) and (boxes[:, 2:] > boxes[:, :2]).all()
    assert (boxes[:, 2] <= 80).all() and (boxes[:, 3] <= 60).all()
    assert len(det[1].ignored_instances) == 0


def test_the_apis_synthetic_batch_draws_the_same_samples():
    from mmengine.config import Config
    from mmlocal.apis import synthetic_batch
    from mmlocal.testing import cifar_classifier_cfg
    cfg = Config(dict(model=cifar_classifier_cfg(), default_scope='mmpretrain'))
    batch = synthetic_batch(cfg, 3, (16, 16), seed=5)
    g = torch.Generator().manual_seed(5)
    [torch.randint(0, 256, (3, 16, 16), dtype=torch.uint8, generator=g) for _ in range(3)]
    from mmlocal.analysis.batch import classification_samples
    want = classification_samples(10, 3, (16, 16), g)
    assert [int(s.gt_label) for s in batch['data_samples']] == [int(s.gt_label) for s in want]


def test_training_input_size():
    model = build_classifier(depth=20)
    assert training_input_size(model, model.backbone, (40, 48)) == (40, 48)
    with pytest.raises(LocalConfigError, match='memory_batch.input_size is needed'):
        training_input_size(model, model.backbone)
    model.data_preprocessor.size = (64, 128)  # what mmseg's preprocessor pads to
    assert training_input_size(model, model.backbone) == (64, 128)
    vit = nn.Module()
    vit.img_size = 224
    del model.data_preprocessor.size
    assert training_input_size(model, vit) == (224, 224)
    with pytest.raises(LocalConfigError, match="task 'keypoints'"):
        synthetic_training_batch(model, 'keypoints', 10, 2, (8, 8))
