"""ResNet-32 CIFAR-10, DGL (psi 1c2f + CE), K=8 (InfoPro/HPFF split)."""
_base_ = './resnet32_cifar10_e2e.py'

optim_wrapper = dict(
    type='LocalLearningOptimWrapper',
    constructor='LocalLearningOptimWrapperConstructor',
    local=dict(
        num_modules=8,
        method=dict(type='DGL', classifier=dict(type='ConvAuxClassifier', arch='1c2f')),
    ))
