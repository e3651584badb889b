"""ResNet-32 CIFAR-10, InfoPro + HPFF, K=16, with the HPFF *paper's* PFF
(ALGORITHMS.md §5.1): the same head on the 2 x 2 patches of the feature, the
predictions fused (logits averaged, reconstructions tiled), one loss on the
fusion: y = 1/n^2 sum_kl g(x^(k,l)). Saves head memory; the released code
(``resnet32_cifar10_infopro_hpff_k16.py``, §5.3) does not patch psi at all.
Everything else as that config.
"""
_base_ = './resnet32_cifar10_infopro_hpff_k16.py'

optim_wrapper = dict(local=dict(pff=dict(patches=2, variant='paper')))
