"""ResNet-110 CIFAR-10, PredSim + HPFF (HiLo k=2 + PFF n=2), K=55 (HPFF
memory table: 1.90 GB). No PredSim+HPFF code is public (ALGORITHMS.md §0):
HPFF's loop (§5.2, ``stem='merged'``, independent heads from segment 1 on,
0.001 / 0.999) with PredSim heads (beta 0.99, §4) and the paper's PFF."""
_base_ = './resnet110_cifar10_e2e.py'

optim_wrapper = dict(
    type='LocalLearningOptimWrapper',
    constructor='LocalLearningOptimWrapperConstructor',
    local=dict(
        num_modules=55,
        stem='merged',
        method=dict(type='PredSim', beta=0.99),
        bn_updates='per-path',  # BN statistics as often as the authors' loop runs each block
        hilo=dict(cascade=2, independent_weight=0.001, cascade_weight=0.999,
                  first_independent=False),
        pff=dict(patches=2, variant='paper'),
    ))
