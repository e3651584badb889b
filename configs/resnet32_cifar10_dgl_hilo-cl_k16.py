"""ResNet-32 CIFAR-10, DGL with cascade heads only, K=16 (HPFF ablation
"CL": 10.51 % test error): the HPFF loop (ALGORITHMS.md §5.2,
``stem='merged'``) without the independent path, each cascade loss at full
weight (an inferred reading: the paper gives no weights for this ablation)."""
_base_ = './resnet32_cifar10_e2e.py'

optim_wrapper = dict(
    type='LocalLearningOptimWrapper',
    constructor='LocalLearningOptimWrapperConstructor',
    local=dict(
        num_modules=16,
        stem='merged',
        method=dict(type='DGL', classifier=dict(type='ConvAuxClassifier', arch='2c2f')),
        bn_updates='per-path',  # BN statistics as often as the authors' loop runs each block
        hilo=dict(cascade=2, independent=False, cascade_weight=1.0),
    ))
