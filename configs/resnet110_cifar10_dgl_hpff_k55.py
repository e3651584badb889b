"""ResNet-110 CIFAR-10, DGL + HPFF (HiLo k=2 + PFF n=2), K=55."""
_base_ = './resnet110_cifar10_e2e.py'

optim_wrapper = dict(
    type='LocalLearningOptimWrapper',
    constructor='LocalLearningOptimWrapperConstructor',
    local=dict(
        num_modules=55,
        method=dict(type='DGL', classifier=dict(type='ConvAuxClassifier', arch='2c2f')),  # HPFF code's psi
        hilo=dict(cascade=2, independent_weight=0.001, cascade_weight=0.999),
        pff=dict(patches=2),
    ))
