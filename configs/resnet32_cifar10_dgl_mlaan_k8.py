"""ResNet-32 CIFAR-10, DGL + MLAAN, K=8 (MLAAN Table I row "DGL*", R32 K=8:
6.25 % test error).

As ``resnet32_cifar10_dgl_mlaan_k16.py`` (MLAAN's ``resnetDGLbin.py``,
ALGORITHMS.md §6.2-6.3) on the K=8 split (§1.2; no stem boundary, the stem
runs in module m1): segments 0 and 1 have no head, from segment 2 on an
independent and a cascade ``auxDGL`` head (0.001 / 0.999) over windows of 3,
the leap copies of §6.5's R32 S=8 table with the EMA of the last module,
the task loss on the cascade path with weight 1.
"""
_base_ = './resnet32_cifar10_e2e.py'

optim_wrapper = dict(
    type='LocalLearningOptimWrapper',
    constructor='LocalLearningOptimWrapperConstructor',
    local=dict(
        num_modules=8,
        method=dict(type='DGL', classifier=dict(type='AuxDGLClassifier')),
        bn_updates='per-path',  # BN statistics as often as the authors' loop runs each block
        hilo=dict(cascade=3, independent_weight=0.001, cascade_weight=0.999,
                  first_independent=False, task_cascade_weight=1.0),
        mlaan=dict(momentum=0.995, ema='last', path='cascade'),
    ))
