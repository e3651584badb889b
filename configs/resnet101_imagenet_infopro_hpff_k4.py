"""ResNet-101 ImageNet, InfoPro + HPFF K=4 (HPFF: 21.14 / 5.49 top-1 / top-5
error, vs 22.81 / 6.54 for InfoPro K=4).

As the authors' ImageNet code (ALGORITHMS.md §5.4): cascade windows of 2
modules only (their independent path is commented out), each cascade loss at
full weight 5 BCE + 0.75 CE, the last window closed by the task loss. PFF is
the paper's: the same head on 2x2 patches of the feature, predictions fused
(their code splits the decoder's output instead, which saves nothing). The
paper's HiLo with the independent path: hilo=dict(cascade=2,
independent=True, independent_weight=0.001, cascade_weight=0.999).
"""
_base_ = './resnet101_imagenet_infopro_k4.py'

optim_wrapper = dict(
    local=dict(
        hilo=dict(cascade=2, independent=False, cascade_weight=1.0),
        pff=dict(patches=2),
    ))
