"""ResNet-32 CIFAR-10, DGL with independent heads only, K=16 (HPFF ablation
"IL": 14.08 % test error, the DGL row): plain DGL with HPFF's psi 2c2f."""
_base_ = './resnet32_cifar10_e2e.py'

optim_wrapper = dict(
    type='LocalLearningOptimWrapper',
    constructor='LocalLearningOptimWrapperConstructor',
    local=dict(
        num_modules=16,
        method=dict(type='DGL', classifier=dict(type='ConvAuxClassifier', arch='2c2f')),
        hilo=None,  # = DGL
    ))
