"""Batch augmentations of mmpretrain's data preprocessor (Mixup, CutMix)
reach the local heads: every head gets the very soft labels the task head
gets and reconstructs the mixed image the backbone saw."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from mmlocal.testing import build_local, cifar_batch, cifar_classifier_cfg
from mmlocal.local import LocalLearner


def _record(model):
    """Spy on the targets of every local head, the task head's data samples
    and the backbone's input, during one train_step."""
    seen = {'local': [], 'task': [], 'backbone': []}
    learner = LocalLearner.of(model)
    for name, head in list(learner.heads.items()) + [
            (f'{k}.cascade', h) for k, h in learner.cascade_heads.items()]:
        def spy(preds, targets, _orig=head.loss, _name=name):
            losses = _orig(preds, targets)
            seen['local'].append((_name, targets, preds, losses))
            return losses
        head.loss = spy
    task_loss = model.head.loss

    def task_spy(feats, data_samples, **kwargs):
        seen['task'].append(torch.stack([s.gt_score for s in data_samples]).clone())
        return task_loss(feats, data_samples, **kwargs)

    model.head.loss = task_spy
    model.backbone.register_forward_pre_hook(
        lambda m, args: seen['backbone'].append(args[0].detach().clone()))
    return seen


@pytest.mark.parametrize('augment', ['Mixup', 'CutMix'])
def test_batch_augment_targets_reach_local_heads(augment):
    from mmengine.registry import init_default_scope
    from mmpretrain.registry import MODELS
    init_default_scope('mmpretrain')
    torch.manual_seed(0)
    # mmpretrain hands train_cfg.augments to the data preprocessor
    model = MODELS.build(dict(cifar_classifier_cfg(depth=20),
                              train_cfg=dict(augments=dict(type=augment, alpha=1.0))))
    model.init_weights()
    method = dict(type='InfoPro', task_weights=(0.5, 0.5))  # CE on every module
    wrapper = build_local(model, dict(num_modules=4, method=method, probe_size=(32, 32)))
    seen = _record(model)
    np.random.seed(0)
    torch.manual_seed(0)
    batch = cifar_batch(8)
    model.train_step(batch, wrapper)

    assert len(seen['task']) == 1 and len(seen['backbone']) == 1
    scores, image = seen['task'][0], seen['backbone'][0]
    assert scores.shape == (8, 10)
    torch.testing.assert_close(scores.sum(1), torch.ones(8))
    assert (scores.max(1).values < 1).any(), 'the batch augmentation mixed nothing'
    pre = model.data_preprocessor
    plain = torch.stack([(b.float().flip(0) if pre.to_rgb else b.float())
                         for b in batch['inputs']])
    plain = (plain - pre.mean) / pre.std
    assert not torch.allclose(image, plain), 'the backbone saw unmixed images'

    assert [n for n, *_ in seen['local']] == ['m1', 'm2', 'm3']
    for name, targets, preds, losses in seen['local']:
        torch.testing.assert_close(targets.labels, scores, msg=name)
        assert targets.inputs is not None and torch.equal(targets.inputs, image)
        want01 = ((image * pre.std + pre.mean) / 255.).clamp(0, 1)
        torch.testing.assert_close(targets.image01, want01)
        # the local CE is the soft-label CE on the mixed labels
        head = dict(LocalLearner.of(model).heads.items())[name]
        soft_ce = -(scores * F.log_softmax(preds['logits'], 1)).sum(1).mean()
        torch.testing.assert_close(losses['loss_cls'], head.loss_weight * soft_ce)


def test_vit_config_mixup_reaches_every_local_head():
    """ViT-B/16 DGL+HPFF K=12 built from its config (Mixup 0.2 on): all 11
    independent and 10 cascade heads train on the task head's soft labels."""
    from test_local.test_vit_isolation import build_vit
    model, wrapper = build_vit('vit-b16_cifar10_dgl_hpff_k12.py')
    seen = _record(model)
    np.random.seed(0)
    torch.manual_seed(0)
    model.train_step(cifar_batch(4), wrapper)
    scores = seen['task'][0]
    assert scores.shape == (4, 10) and (scores.max(1).values < 1).any()
    assert len(seen['local']) == 21
    for name, targets, _, _ in seen['local']:
        torch.testing.assert_close(targets.labels, scores, msg=name)
        assert torch.equal(targets.inputs, seen['backbone'][0])
