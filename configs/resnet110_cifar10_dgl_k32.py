"""ResNet-110 CIFAR-10, DGL (psi 1c2f + CE), K=32 (InfoPro/HPFF split)."""
_base_ = './resnet110_cifar10_e2e.py'

optim_wrapper = dict(
    type='LocalLearningOptimWrapper',
    constructor='LocalLearningOptimWrapperConstructor',
    local=dict(
        num_modules=32,
        method=dict(type='DGL', classifier=dict(type='ConvAuxClassifier', arch='1c2f')),
    ))
