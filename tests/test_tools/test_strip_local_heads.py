"""tools/model_converters/strip_local_heads.py leaves a checkpoint the plain
task model loads strictly, from either checkpoint layout."""
import os.path as osp
import subprocess
import sys

import pytest
import torch

from mmlocal.testing import build_classifier

# subprocesses of the tools, as a user runs them: each takes 15 s or more on a
# busy 2-core machine (mmlocal.apis has the in-process tests)
pytestmark = pytest.mark.slow

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CONVERTER = osp.join(ROOT, 'tools', 'model_converters', 'strip_local_heads.py')


def convert(*args: str) -> subprocess.CompletedProcess:
    out = subprocess.run([sys.executable, CONVERTER, *args], cwd=ROOT,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    return out


def assert_plain_model_loads(state_dict: dict, want: dict) -> None:
    plain = build_classifier(depth=20, seed=1)
    plain.load_state_dict(state_dict, strict=True)
    for key, value in want.items():
        assert torch.equal(plain.state_dict()[key], value), key


@pytest.mark.parametrize('layout', ['old', 'new'])
def test_strip_then_strict_load(local_checkpoints, layout, tmp_path):
    dst = str(tmp_path / 'plain.pth')
    out = convert(local_checkpoints[layout], dst)
    heads = local_checkpoints['num_learner_tensors'] if layout == 'old' else 0
    assert f'removed {heads} local_learner.* parameters/buffers' in out.stdout
    if layout == 'old':
        assert 'local_learner.heads.' in out.stdout
    else:
        assert 'removed local-learner state: local_learner' in out.stdout
    assert 'removed training state: optimizer, message_hub' in out.stdout

    checkpoint = torch.load(dst, map_location='cpu')  # weights-only
    assert set(checkpoint) == {'meta', 'state_dict'}
    assert checkpoint['meta']['epoch'] == 1
    assert_plain_model_loads(checkpoint['state_dict'], local_checkpoints['plain'])


@pytest.mark.parametrize('layout', ['old', 'new'])
def test_keep_training_state(local_checkpoints, layout, tmp_path):
    dst = str(tmp_path / 'plain.pth')
    out = convert(local_checkpoints[layout], dst, '--keep-training-state')
    assert 'training state' not in out.stdout
    checkpoint = torch.load(dst, map_location='cpu')
    assert set(checkpoint) == {'meta', 'state_dict', 'optimizer', 'message_hub'}
    assert 'local_learner' not in checkpoint['optimizer']
    assert checkpoint['message_hub']['log_scalars']['train/loss'].current() == 1.5
    assert_plain_model_loads(checkpoint['state_dict'], local_checkpoints['plain'])
