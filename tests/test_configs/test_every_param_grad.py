"""One training step of every local config gives every trainable backbone
parameter a non-zero gradient: no local module is left unsupervised (issue 13).

The gradient is read as it accumulates (a post-accumulate hook on each
parameter), before the optimizer step and its zero_grad. CIFAR-10 configs run
on the bundled real images; the detectors on the bundled real detection set
(``data/det_mini``) resized to 256x256, Mask R-CNN on the real Cityscapes
frame's instances; SVHN/STL-10 and the heavy ImageNet,
Cityscapes and ViT models on random images of a small size (all but CIFAR-10
are ``slow``).
"""
import glob
import json
import os.path as osp
import re

import mmlocal  # noqa: F401
import pytest
import torch

from mmlocal import apis

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CIFAR_MINI = osp.join(ROOT, 'data', 'cifar10_mini')
DET_MINI = osp.join(ROOT, 'data', 'det_mini')
DETECTORS = ('faster-rcnn', 'retinanet')  # on det_mini; Mask R-CNN on the Cityscapes frame


def _local_configs():
    out = []
    for p in sorted(glob.glob(osp.join(ROOT, 'configs', '*.py'))):
        name = osp.basename(p)
        if '_e2e' in name:
            continue
        cheap = re.match(r'resnet(32|110)_(cifar10|svhn|stl10)_', name) is not None
        out.append(pytest.param(name, marks=()) if cheap else
                   pytest.param(name, marks=pytest.mark.slow))
    return out


# small inputs for the heavy models: enough for their deepest local feature
SMALL = {'deeplabv3': (32, 64), 'imagenet': (64, 64), 'vit': None}


def det_mini(cfg) -> None:
    """The config's training set -> data/det_mini (COCO layout), 256x256."""
    with open(osp.join(DET_MINI, 'annotations', 'instances_train.json')) as f:
        classes = tuple(c['name'] for c in json.load(f)['categories'])
    data = cfg.train_dataloader.dataset
    data.update(data_root=DET_MINI, ann_file='annotations/instances_train.json',
                data_prefix=dict(img='train/'), metainfo=dict(classes=classes))
    for step in data.pipeline:
        if step['type'] == 'Resize':
            step['scale'] = (256, 256)


@pytest.mark.parametrize('name', _local_configs())
def test_every_trainable_backbone_parameter_gets_a_gradient(name):
    cfg = apis.load_config(osp.join(ROOT, 'configs', name), None)
    for key in ('init_cfg', 'pretrained'):
        cfg.model.get('backbone', {}).pop(key, None)
    cfg.load_from = None
    size = next((v for k, v in SMALL.items() if k in name), None)
    if size:  # mmseg's preprocessor would pad the small input to the full crop
        apis.fit_preprocessor_size(cfg, size)
    torch.manual_seed(0)
    model, optim_wrapper = apis.build_model_and_optim_wrapper(cfg, torch.device('cpu'))
    if '_cifar10_' in name and name.startswith('resnet'):
        cfg.train_dataloader.dataset.data_root = CIFAR_MINI
        batch = apis.real_batch(cfg, 4, 0)
    elif name.startswith(DETECTORS):
        det_mini(cfg)
        batch = apis.real_batch(cfg, 2, 0)
    elif name.startswith('mask-rcnn'):
        from mmlocal.testing.detection import frame_batch
        batch = frame_batch(2, masks=True)
    else:
        batch = apis.synthetic_batch(cfg, 2 if size else 4, size, 0)
    backbone = model.backbone
    seen = {}

    def record(param_name):
        def hook(p):
            seen[param_name] = max(seen.get(param_name, 0.), float(p.grad.abs().sum()))
        return hook

    handles = [p.register_post_accumulate_grad_hook(record(n))
               for n, p in backbone.named_parameters() if p.requires_grad]
    try:
        model.train_step(batch, optim_wrapper)
    finally:
        for h in handles:
            h.remove()
    trainable = [n for n, p in backbone.named_parameters() if p.requires_grad]
    assert trainable
    missing = [n for n in trainable if seen.get(n, 0.) == 0.]
    assert not missing, f'{len(missing)} backbone parameters got no gradient: {missing[:6]}'
