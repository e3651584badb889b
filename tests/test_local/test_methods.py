"""Local methods: the head each builds for a feature and task, InfoPro's
schedules, the PFF variants' decoders, the losses with the weights given."""
import pytest
import torch
import torch.nn.functional as F

from mmlocal.local.methods import (DGL, InfoPro, PredSim, build_method, default_classifier,
                                   default_decoder, linear_schedule)
from mmlocal.structures import FeatureInfo, LocalTargets, TaskInfo

CLS = TaskInfo('classification', 10)
SEG = TaskInfo('segmentation', 19)
DET = TaskInfo('detection', 2)


def test_infopro_schedules_are_the_papers_linear_lambdas():
    """InfoPro's R32 K=16 ends (ALGORITHMS.md §2.1): lambda_recon 5 -> 0.2,
    lambda_task 0.05 -> 0.5, linear in r."""
    m = InfoPro()
    assert m.loss_weights(0.) == pytest.approx(dict(recon=5., task=0.05))
    assert m.loss_weights(1.) == pytest.approx(dict(recon=0.2, task=0.5))
    assert m.loss_weights(0.5) == pytest.approx(dict(recon=2.6, task=0.275))
    assert linear_schedule((5., 0.), 0.25) == pytest.approx(3.75)
    assert m.scheduled and m.has_decoder
    assert DGL(loss_weight=2.).loss_weights(0.7) == dict(cls=2.)
    assert not DGL.scheduled and not DGL.has_decoder
    assert PredSim(loss_weight=0.5).loss_weights(0.) == dict(predsim=0.5)


@pytest.mark.parametrize('task, feat, psi, decoder', [
    (CLS, FeatureInfo(16, (32, 32)), 'ConvAuxClassifier', 'ReconDecoder'),
    (CLS, FeatureInfo(1024, (14, 14), 16), 'ImageNetAuxClassifier', 'UpsampleDecoder'),
    (CLS, FeatureInfo(192, (4, 4), 8, tokens=True), 'ViTAuxClassifier', 'PatchReconDecoder'),
    (SEG, FeatureInfo(256, (16, 32), 4), 'SegAuxClassifier', 'UpsampleDecoder'),
    (DET, FeatureInfo(512, (8, 8), 8), 'RetinaHead', 'UpsampleDecoder'),
])
def test_default_heads_follow_the_task_and_the_feature(task, feat, psi, decoder):
    assert default_classifier(task, feat)['type'] == psi
    assert default_decoder(task, feat)['type'] == decoder
    head = InfoPro().build_head(feat, task, InfoPro().loss_weights(0.))
    assert type(head.decoder).__name__ == decoder
    if task is DET:
        assert type(head).__name__ == 'DetInfoProHead'
        assert type(head.dense_head).__name__ == psi and head.stride == feat.stride
    else:
        assert type(head).__name__ == 'InfoProHead' and type(head.classifier).__name__ == psi
        assert head.dense == (task is SEG)


def test_default_classifier_is_a_light_retina_head():
    from mmlocal.models.heads.det_heads import DetClassifierHead, DetInfoProHead
    from mmlocal.models.heads.decoders import UpsampleDecoder
    feat, task = FeatureInfo(512, (8, 8), stride=8), TaskInfo('detection', 2)
    head = DGL().build_head(feat, task, DGL().loss_weights(0.))
    assert isinstance(head, DetClassifierHead) and head.stride == 8
    assert type(head.dense_head).__name__ == 'RetinaHead'
    assert head.dense_head.stacked_convs == 2 and head.dense_head.in_channels == 512
    infopro = InfoPro(recon_weights=(1.5, 1.5), task_weights=(1., 0.))
    head = infopro.build_head(FeatureInfo(1024, (4, 4), stride=16), task,
                              infopro.loss_weights(1.))  # the schedule's end: task weight 0
    assert isinstance(head, DetInfoProHead) and isinstance(head.decoder, UpsampleDecoder)
    assert head.dense_head.prior_generator.strides == [(16, 16)]
    assert head.loss_weight == 0. and head.recon_weight == 1.5


def test_infopro_loss_is_the_weighted_sum_of_bce_and_ce():
    """The weights the plan gives reach the right terms: lambda_recon * BCE
    (image in [0, 1]) + lambda_task * CE, recomputed here from the head's
    predictions."""
    torch.manual_seed(0)
    m = InfoPro(recon_weights=(3., 3.), task_weights=(0.25, 0.25))
    head = m.build_head(FeatureInfo(16, (8, 8)), CLS, m.loss_weights(0.4))
    targets = LocalTargets(inputs=torch.rand(4, 3, 8, 8) * 255,
                           labels=torch.tensor([1, 2, 3, 4]))
    preds = head(torch.randn(4, 16, 8, 8), (8, 8))
    losses = head.loss(preds, targets)
    torch.testing.assert_close(losses['loss_recon'], 3. * F.binary_cross_entropy(
        preds['recon'], targets.inputs / 255.))
    torch.testing.assert_close(losses['loss_cls'],
                               0.25 * F.cross_entropy(preds['logits'], targets.labels))


def test_pff_variants_patch_the_reconstruction():
    feat = FeatureInfo(16, (32, 32))
    m = InfoPro()
    w = m.loss_weights(0.)
    assert type(m.build_head(feat, CLS, w, pff=('paper', 2)).decoder).__name__ == 'ReconDecoder'
    quadrant = m.build_head(feat, CLS, w, pff=('quadrant', 2)).decoder
    assert type(quadrant).__name__ == 'QuadrantReconDecoder' and len(quadrant.decoders) == 4
    output = m.build_head(feat, CLS, w, pff=('output', 3)).decoder
    assert output.loss_scale == 9.


def test_predsim_is_classification_only_and_methods_are_checked():
    head = PredSim(dim_in_decoder=64).build_head(FeatureInfo(16, (8, 8)), CLS,
                                                  dict(predsim=1.))
    assert type(head).__name__ == 'PredSimHead'
    with pytest.raises(ValueError, match='PredSim is defined for classification targets only'):
        PredSim().build_head(FeatureInfo(256, (16, 16)), SEG, dict(predsim=1.))
    assert isinstance(build_method(dict(type='InfoPro', task_loss='contrast')), InfoPro)
    with pytest.raises(ValueError, match="unknown local method 'Foo'"):
        build_method(dict(type='Foo'))
