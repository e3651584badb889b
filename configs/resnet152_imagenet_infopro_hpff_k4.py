"""ResNet-152 ImageNet, InfoPro + HPFF K=4 (HPFF: 20.99 / 5.29 top-1 / top-5
error; E2E 21.60 / 5.92).

mmpretrain's ResNet-152 differs from its ResNet-101 only in depth, and so does
this config from ``resnet101_imagenet_infopro_hpff_k4.py``. HPFF reuses the
ResNet-101 end points (layer3[0], [9], [17]); layer3 has 36 blocks here, so
the last module is the heaviest (split='memory' balances measured memory).
E2E baseline: ``mmpretrain::resnet/resnet152_8xb32_in1k.py`` with the
schedule of ``resnet101_imagenet_e2e.py``.

Recipe: mmpretrain's 8 x 32 (batch 256, SGD lr 0.1 Nesterov, weight decay 1e-4,
cosine per epoch, 90 epochs, ``zero_init_residual=True``; see
``resnet101_imagenet_e2e.py``), the authors' lr per sample. HPFF's own recipe
(batch 128 on one GPU, lr 0.05, ``zero_init_residual=False``) is
``resnet101_imagenet_infopro_hpff_k4_1xb128.py`` for ResNet-101; its four
overrides apply here unchanged.
"""
_base_ = './resnet101_imagenet_infopro_hpff_k4.py'

model = dict(backbone=dict(depth=152))
