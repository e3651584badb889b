"""ResNet-32 CIFAR-10 K=16, DGL with cascade heads only (HPFF ablation "CL")."""
_base_ = './resnet32_cifar10_e2e.py'

optim_wrapper = dict(
    type='LocalLearningOptimWrapper',
    constructor='LocalLearningOptimWrapperConstructor',
    local=dict(
        num_modules=16,
        method=dict(type='DGL', classifier=dict(type='ConvAuxClassifier', arch='2c2f')),  # HPFF code's psi
        hilo=dict(cascade=2, independent=False, cascade_weight=1.0),
    ))
