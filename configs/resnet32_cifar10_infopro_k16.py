"""ResNet-32 CIFAR-10, InfoPro (softmax), K=16.

lambda schedules of HPFF/MLAAN (ixx 5 -> 0, ixy 0.5 -> 0); InfoPro's own
contrast runs use e.g. R32 K=16 recon (5, 0.2), task (0.05, 0.5), task_loss='contrast'."""
_base_ = './resnet32_cifar10_e2e.py'

optim_wrapper = dict(
    type='LocalLearningOptimWrapper',
    constructor='LocalLearningOptimWrapperConstructor',
    local=dict(
        num_modules=16,
        method=dict(type='InfoPro', recon_weights=(5., 0.), task_weights=(0.5, 0.)),  # HPFF/MLAAN README
    ))
