"""ResNet-110 CIFAR-10, DGL + HPFF (HiLo k=2 + PFF n=2), K=55 (HPFF Table 1,
R110 K=55 DGL+HPFF: 8.74 % test error).

As ``resnet32_cifar10_dgl_hpff_k16.py``: HPFF's InfoPro+HPFF loop
(ALGORITHMS.md §5.2, ``stem='merged'``, S = 54 segments) with DGL heads
(psi 2c2f, CE; independent 0.001 from segment 1 on, cascade 0.999 over
windows of 2) and the paper's PFF on 2 x 2 feature patches.
"""
_base_ = [
    './resnet110_cifar10_e2e.py',
    './_base_/local/dgl_cifar.py',
    './_base_/local/hilo_loop.py',
]

optim_wrapper = _base_.pop('local_learning')
optim_wrapper.local.update(
    _base_.pop('local_hilo'), num_modules=55, pff=dict(patches=2, variant='paper'))
optim_wrapper.local.method.classifier.arch = '2c2f'
