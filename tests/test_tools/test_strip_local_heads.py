"""tools/model_converters/strip_local_heads.py leaves a checkpoint the plain
task model loads strictly."""
import importlib.util
import os.path as osp
import subprocess
import sys

import torch
from conftest import build_classifier, cifar_batch
from mmengine.logging import MessageHub

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CONVERTER = osp.join(ROOT, 'tools', 'model_converters', 'strip_local_heads.py')


def _locally_trained_checkpoint(path: str) -> torch.nn.Module:
    """A Runner-style checkpoint of a CIFAR ResNet after one real SGD step,
    with auxiliary-head keys, optimizer state and a message hub."""
    model = build_classifier(depth=20)
    heads = torch.nn.ModuleDict(dict(
        m1=torch.nn.Sequential(torch.nn.Conv2d(16, 32, 3), torch.nn.BatchNorm2d(32),
                               torch.nn.Flatten(), torch.nn.LazyLinear(10))))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    data = model.data_preprocessor(cifar_batch(4), True)
    losses = model(**data, mode='loss')
    sum(losses.values()).backward()
    optimizer.step()

    hub = MessageHub.get_instance('strip_local_heads_test')
    hub.update_scalar('train/loss', float(losses['loss']))
    state_dict = model.state_dict()
    heads['m1'](torch.zeros(1, 16, 8, 8))  # materialise the lazy layer
    state_dict.update({f'local_learner.heads.{k}': v
                       for k, v in heads.state_dict().items()})
    meta = dict(epoch=1, iter=10, dataset_meta=dict(classes=list('0123456789')))
    torch.save(dict(meta=meta, state_dict=state_dict,
                    optimizer=optimizer.state_dict(),
                    message_hub=hub.state_dict()), path)
    return model


def test_strip_then_strict_load(tmp_path):
    src, dst = str(tmp_path / 'local.pth'), str(tmp_path / 'plain.pth')
    trained = _locally_trained_checkpoint(src)
    out = subprocess.run([sys.executable, CONVERTER, src, dst], cwd=ROOT,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert 'removed 9 local_learner.* parameters/buffers' in out.stdout
    assert 'local_learner.heads.m1.* (9)' in out.stdout
    assert 'optimizer' in out.stdout and 'message_hub' in out.stdout

    checkpoint = torch.load(dst, map_location='cpu')  # weights-only
    assert set(checkpoint) == {'meta', 'state_dict'}
    assert checkpoint['meta']['epoch'] == 1
    plain = build_classifier(depth=20, seed=1)
    plain.load_state_dict(checkpoint['state_dict'], strict=True)
    for key, value in trained.state_dict().items():
        assert torch.equal(plain.state_dict()[key], value), key


def test_keep_training_state(tmp_path, monkeypatch, capsys):
    src, dst = str(tmp_path / 'local.pth'), str(tmp_path / 'plain.pth')
    _locally_trained_checkpoint(src)
    spec = importlib.util.spec_from_file_location('strip_local_heads', CONVERTER)
    converter = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(converter)
    monkeypatch.setattr(sys, 'argv', [CONVERTER, src, dst, '--keep-training-state'])
    assert converter.main() == 0
    assert 'training state' not in capsys.readouterr().out
    checkpoint = torch.load(dst, map_location='cpu')
    assert set(checkpoint) == {'meta', 'state_dict', 'optimizer', 'message_hub'}
    assert not [k for k in checkpoint['state_dict']
                if k.startswith('local_learner.')]
    assert checkpoint['message_hub']['log_scalars']['train/loss'].current() > 0
