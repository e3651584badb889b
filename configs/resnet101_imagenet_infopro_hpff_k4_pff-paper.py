"""ResNet-101 ImageNet, InfoPro + HPFF K=4 with the HPFF *paper's* PFF
(ALGORITHMS.md §5.1): the same head (psi and decoder) on the 2 x 2 patches of
the 1024-channel feature, predictions fused, one loss on the fusion. Everything
else as ``resnet101_imagenet_infopro_hpff_k4.py`` (HPFF's ImageNet code, §5.4).

Recipe: mmpretrain's 8 x 32 (batch 256, SGD lr 0.1 Nesterov, weight decay 1e-4,
cosine per epoch, 90 epochs, ``zero_init_residual=True``; see
``resnet101_imagenet_e2e.py``), the authors' lr per sample. HPFF's own recipe
(batch 128 on one GPU, lr 0.05, ``zero_init_residual=False``):
``resnet101_imagenet_infopro_hpff_k4_1xb128.py``.
"""
_base_ = './resnet101_imagenet_infopro_hpff_k4.py'

optim_wrapper = dict(local=dict(pff=dict(patches=2, variant='paper')))
