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


@pytest.mark.parametrize('config,boundary,head', [
    ('mmseg::segformer/segformer_mit-b0_8xb2-160k_ade20k-512x512.py',
     '| local.m1 | backbone.layers.0.1.1 | 32, 16x16, 4 tokens |', 'ClassifierHead (SegAuxClassifier)'),
    ('mmpretrain::mobilenet_v2/mobilenet-v2_8xb32_in1k.py',
     '| local.m1 | backbone.layer3.0 | 32, 8x8, 8 |', 'ClassifierHead (ConvAuxClassifier)'),
    ('mmdet::yolox/yolox_tiny_8xb8-300e_coco.py',
     '| local.m1 | backbone.stage1.1 | 48, 16x16, 4 |', 'DetClassifierHead (RetinaHead)'),
])
def test_zoo_names_split_and_get_heads_of_their_kind(config, boundary, head, capsys):
    """Any zoo config: --num-modules alone gives the split of its backbone and
    the local heads of its kind (classifier, segmentor, detector)."""
    assert _tool().main([config]).startswith('end-to-end')
    text = _tool().main([config, '--num-modules', '4'])
    assert 'K=4 modules' in text
    assert f'{boundary} {head} |' in text
