"""tools/analysis/print_local_plan.py prints the plan of every config in
configs/ (the heavy ImageNet, Cityscapes and ViT models are ``slow``)."""
import glob
import os.path as osp
import re

import mmlocal  # noqa: F401
import pytest

from checkout import load_tool

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


def _tool():
    return load_tool(osp.join('tools', 'analysis', 'print_local_plan.py'))


def _configs():
    out = []
    for p in sorted(glob.glob(osp.join(ROOT, 'configs', '*.py'))):
        name = osp.basename(p)
        cheap = re.match(r'resnet(32|110)_(cifar10|svhn|stl10)_', name) is not None
        out.append(pytest.param(name) if cheap else pytest.param(name, marks=pytest.mark.slow))
    return out


@pytest.mark.parametrize('name', _configs())
def test_prints_the_plan_of_every_config(name, capsys):
    text = _tool().main([osp.join(ROOT, 'configs', name)])
    assert capsys.readouterr().out.strip() == text.strip()
    if '_e2e' in name:
        assert text.startswith('end-to-end')
        return
    k = int(re.search(r'K=(\d+) modules', text).group(1))
    for m in range(1, k + 1):
        assert f'| m{m} |' in text
    assert 'total loss weight per module' in text


def test_cfg_options_change_the_plan(capsys):
    text = _tool().main([osp.join(ROOT, 'configs', 'resnet32_cifar10_dgl_k16.py'),
                         '--cfg-options', 'optim_wrapper.local.num_modules=4'])
    assert 'K=4 modules' in text
