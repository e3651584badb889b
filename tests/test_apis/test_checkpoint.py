"""mmlocal.apis.strip_local_learner on real checkpoints of both layouts."""
import torch

from mmlocal import apis


def test_old_layout(local_checkpoints):
    checkpoint = torch.load(local_checkpoints['old'], map_location='cpu')
    removed = apis.strip_local_learner(checkpoint)
    n = local_checkpoints['num_learner_tensors']
    assert all(k.startswith('local_learner.') for k in removed[:n])
    assert removed[n:] == ['optimizer', 'message_hub']
    assert set(checkpoint['state_dict']) == set(local_checkpoints['plain'])
    assert set(checkpoint) == {'meta', 'state_dict'}


def test_new_layout(local_checkpoints):
    checkpoint = torch.load(local_checkpoints['new'], map_location='cpu')
    removed = apis.strip_local_learner(checkpoint)
    assert removed == ['local_learner', 'optimizer', 'message_hub']
    assert set(checkpoint) == {'meta', 'state_dict'}
    assert set(checkpoint['state_dict']) == set(local_checkpoints['plain'])


def test_keep_training_state(local_checkpoints):
    checkpoint = torch.load(local_checkpoints['new'], map_location='cpu')
    removed = apis.strip_local_learner(checkpoint, keep_training_state=True)
    assert removed == ['local_learner', 'optimizer.local_learner']
    assert 'local_learner' not in checkpoint['optimizer']
    assert checkpoint['optimizer']['state']  # SGD momentum kept
    checkpoint = torch.load(local_checkpoints['old'], map_location='cpu')
    removed = apis.strip_local_learner(checkpoint, keep_training_state=True)
    assert len(removed) == local_checkpoints['num_learner_tensors']
    assert set(checkpoint) == {'meta', 'state_dict', 'optimizer', 'message_hub'}


def test_bare_state_dict(local_checkpoints):
    state_dict = torch.load(local_checkpoints['old'], map_location='cpu')['state_dict']
    keys = apis.local_learner_keys(state_dict)
    assert len(keys) == local_checkpoints['num_learner_tensors']
    assert apis.strip_local_learner(state_dict) == keys
    assert set(state_dict) == set(local_checkpoints['plain'])
    assert apis.strip_local_learner(state_dict) == []  # nothing left to strip
