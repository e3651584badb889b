"""ResNet-110 CIFAR-10, DGL + HPFF (HiLo k=2 + PFF n=2), K=55 (HPFF Table 1,
R110 K=55 DGL+HPFF: 8.74 % test error).

As ``resnet32_cifar10_dgl_hpff_k16.py``: HPFF's InfoPro+HPFF loop
(ALGORITHMS.md §5.2, ``stem='merged'``, S = 54 segments) with DGL heads
(psi 2c2f, CE; independent 0.001 from segment 1 on, cascade 0.999 over
windows of 2) and the paper's PFF on 2 x 2 feature patches.
"""
_base_ = './resnet110_cifar10_e2e.py'

optim_wrapper = dict(
    type='LocalLearningOptimWrapper',
    constructor='LocalLearningOptimWrapperConstructor',
    local=dict(
        num_modules=55,
        stem='merged',
        method=dict(type='DGL', classifier=dict(type='ConvAuxClassifier', arch='2c2f')),
        bn_updates='per-path',  # BN statistics as often as the authors' loop runs each block
        hilo=dict(cascade=2, independent_weight=0.001, cascade_weight=0.999,
                  first_independent=False),
        pff=dict(patches=2, variant='paper'),
    ))
