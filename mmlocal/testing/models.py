"""Small real models and real data for tests and examples."""
import glob
import os.path as osp
import random

import torch

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
#: the bundled CIFAR-10 subset (data/README.md)
CIFAR_MINI = osp.join(ROOT, 'data', 'cifar10_mini')
CIFAR_CLASSES = ('airplane', 'automobile', 'bird', 'cat', 'deer', 'dog', 'frog',
                 'horse', 'ship', 'truck')


def cifar_classifier_cfg(depth: int = 20, num_classes: int = 10) -> dict:
    """mmpretrain ImageClassifier on the He et al. CIFAR ResNet."""
    return dict(
        type='ImageClassifier',
        data_preprocessor=dict(
            type='ClsDataPreprocessor', num_classes=num_classes,
            mean=[125.307, 122.961, 113.8575], std=[51.5865, 50.847, 51.255],
            to_rgb=False),
        backbone=dict(type='CifarResNet', depth=depth),
        neck=dict(type='GlobalAveragePooling'),
        head=dict(type='LinearClsHead', num_classes=num_classes, in_channels=64,
                  loss=dict(type='CrossEntropyLoss')))


def build_classifier(depth: int = 20, seed: int = 0) -> torch.nn.Module:
    """``cifar_classifier_cfg(depth)`` built and initialised with ``seed``."""
    from mmengine.registry import init_default_scope
    from mmpretrain.registry import MODELS
    init_default_scope('mmpretrain')
    torch.manual_seed(seed)
    model = MODELS.build(cifar_classifier_cfg(depth))
    model.init_weights()
    return model


def cifar_batch(n: int = 8, split: str = 'train', seed: int = 0) -> dict:
    """``n`` real CIFAR-10 images of the bundled subset, as a data batch."""
    import mmcv
    from mmpretrain.structures import DataSample
    files = []
    for label, name in enumerate(CIFAR_CLASSES):
        files += [(f, label)
                  for f in sorted(glob.glob(osp.join(CIFAR_MINI, split, name, '*.jpg')))]
    if not files:
        raise FileNotFoundError(
            f'the bundled CIFAR-10 subset is missing under {CIFAR_MINI} '
            '(see data/README.md to recreate it)')
    random.Random(seed).shuffle(files)
    inputs, samples = [], []
    for f, label in files[:n]:
        img = mmcv.imread(f, channel_order='rgb')
        inputs.append(torch.from_numpy(img).permute(2, 0, 1).contiguous())
        samples.append(DataSample().set_gt_label(label))
    return dict(inputs=inputs, data_samples=samples)

