"""ResNet-101 ImageNet, InfoPro + HPFF K=4 with the HPFF *paper's* PFF
(ALGORITHMS.md §5.1): the same head (psi and decoder) on the 2 x 2 patches of
the 1024-channel feature, predictions fused, one loss on the fusion. Everything
else as ``resnet101_imagenet_infopro_hpff_k4.py`` (HPFF's ImageNet code, §5.4).
"""
_base_ = './resnet101_imagenet_infopro_hpff_k4.py'

optim_wrapper = dict(local=dict(pff=dict(patches=2, variant='paper')))
