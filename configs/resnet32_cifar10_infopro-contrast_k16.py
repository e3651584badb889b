"""ResNet-32 CIFAR-10, InfoPro (Contrast), K=16, as InfoPro's own CIFAR runs:
SupCon task loss on a 128-d psi output, lambdas (5, 0.05) -> (0.2, 0.5) over the
local modules (ALGORITHMS.md 2.2). The HPFF/MLAAN setting is
``resnet32_cifar10_infopro_k16.py`` (softmax, (5, 0.5) -> (0, 0))."""
_base_ = './resnet32_cifar10_e2e.py'

optim_wrapper = dict(
    type='LocalLearningOptimWrapper',
    constructor='LocalLearningOptimWrapperConstructor',
    local=dict(
        num_modules=16,
        method=dict(type='InfoPro', recon_weights=(5., 0.2), task_weights=(0.05, 0.5),
                    task_loss='contrast'),
    ))
