"""ResNet-32 CIFAR-10, DGL + MLAAN, K=16.

Multilaminar modules (cascade windows of k=3) + leap-augmented modules
(trainable + EMA copies of later blocks, r=0.995) on the cascade path, EMA
of the last module only, as the authors' CIFAR code (ALGORITHMS.md §6)."""
_base_ = './resnet32_cifar10_e2e.py'

optim_wrapper = dict(
    type='LocalLearningOptimWrapper',
    constructor='LocalLearningOptimWrapperConstructor',
    local=dict(
        num_modules=16,
        method=dict(type='DGL', classifier=dict(type='ConvAuxClassifier', arch='0c1f')),
        hilo=dict(cascade=3, independent_weight=0.001, cascade_weight=0.999),
        mlaan=dict(momentum=0.995, ema='last', path='cascade'),
    ))
