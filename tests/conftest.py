"""Shared fixtures: a small real model and a real data batch."""
import os.path as osp

import pytest

import mmlocal  # noqa: F401  (compat + registration before the toolboxes)
from mmlocal.testing import CIFAR_MINI, build_classifier, cifar_batch


@pytest.fixture
def classifier():
    """A CIFAR ResNet-20 classifier (mmpretrain), seed 0."""
    return build_classifier()


@pytest.fixture
def batch():
    """8 real CIFAR-10 images of the bundled subset."""
    if not osp.isdir(osp.join(CIFAR_MINI, 'train')):
        pytest.skip(f'bundled CIFAR-10 subset missing under {CIFAR_MINI}')
    return cifar_batch(8)


@pytest.fixture
def local_checkpoints(tmp_path):
    """Runner-style checkpoints of a CIFAR ResNet-20 after one real DGL K=4
    step, in both layouts: ``old`` keeps the learner's tensors as
    ``local_learner.*`` keys of the ``state_dict``; ``new`` keeps them beside
    it (in the optimizer wrapper's state, and as a top-level entry, the two
    places the stripping must handle).

    Returns the two paths and the plain model's state dict."""
    import torch
    from mmengine.logging import MessageHub

    from mmlocal.testing import build_local
    model = build_classifier(depth=20)
    wrapper = build_local(model, dict(num_modules=4, method=dict(type='DGL')))
    model.train_step(cifar_batch(4), wrapper)
    learner = wrapper.learner.state_dict()
    assert learner, 'the learner holds no tensors'
    plain = {k: v for k, v in model.state_dict().items()
             if not k.startswith('local_learner.')}
    optimizer = {k: v for k, v in wrapper.state_dict().items() if k != 'local_learner'}
    hub = MessageHub.get_instance('local_checkpoints_fixture')
    hub.update_scalar('train/loss', 1.5)
    meta = dict(epoch=1, iter=10, dataset_meta=dict(classes=list('0123456789')))
    old = dict(meta=meta, message_hub=hub.state_dict(), optimizer=optimizer,
               state_dict={**plain, **{f'local_learner.{k}': v for k, v in learner.items()}})
    new = dict(meta=meta, message_hub=hub.state_dict(), state_dict=dict(plain),
               optimizer=dict(optimizer, local_learner=learner),
               local_learner=learner)
    paths = dict(old=str(tmp_path / 'old_layout.pth'), new=str(tmp_path / 'new_layout.pth'))
    torch.save(old, paths['old'])
    torch.save(new, paths['new'])
    return dict(paths, plain=plain, num_learner_tensors=len(learner))
