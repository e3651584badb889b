"""ResNet-32 CIFAR-10 K=16, DGL with independent heads only: plain DGL (HPFF ablation "IL")."""
_base_ = './resnet32_cifar10_e2e.py'

optim_wrapper = dict(
    type='LocalLearningOptimWrapper',
    constructor='LocalLearningOptimWrapperConstructor',
    local=dict(
        num_modules=16,
        method=dict(type='DGL', classifier=dict(type='ConvAuxClassifier', arch='2c2f')),  # HPFF code's psi
        hilo=None,  # = DGL
    ))
