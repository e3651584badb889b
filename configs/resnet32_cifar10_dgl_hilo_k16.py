"""ResNet-32 CIFAR-10, DGL with independent + cascade heads, K=16 (HPFF
ablation "IL+CL": 9.44 % test error): ``resnet32_cifar10_dgl_hpff_k16.py``
without PFF (the HPFF loop of ALGORITHMS.md §5.2 with DGL heads, psi 2c2f)."""
_base_ = './resnet32_cifar10_e2e.py'

optim_wrapper = dict(
    type='LocalLearningOptimWrapper',
    constructor='LocalLearningOptimWrapperConstructor',
    local=dict(
        num_modules=16,
        stem='merged',
        method=dict(type='DGL', classifier=dict(type='ConvAuxClassifier', arch='2c2f')),
        bn_updates='per-path',  # BN statistics as often as the authors' loop runs each block
        hilo=dict(cascade=2, independent_weight=0.001, cascade_weight=0.999,
                  first_independent=False),
    ))
