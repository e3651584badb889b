"""ResNet-152 ImageNet, InfoPro + HPFF K=4 (HPFF: 20.99 / 5.29 top-1 / top-5
error; E2E 21.60 / 5.92).

mmpretrain's ResNet-152 differs from its ResNet-101 only in depth, and so does
this config from ``resnet101_imagenet_infopro_hpff_k4.py``. HPFF reuses the
ResNet-101 end points (layer3[0], [9], [17]); layer3 has 36 blocks here, so
the last module is the heaviest (split='memory' balances measured memory).
E2E baseline: ``mmpretrain::resnet/resnet152_8xb32_in1k.py`` with the
schedule of ``resnet101_imagenet_e2e.py``.
"""
_base_ = './resnet101_imagenet_infopro_hpff_k4.py'

model = dict(backbone=dict(depth=152))
