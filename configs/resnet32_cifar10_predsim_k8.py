"""ResNet-32 CIFAR-10, PredSim (beta 0.99), K=8."""
_base_ = './resnet32_cifar10_e2e.py'

optim_wrapper = dict(
    type='LocalLearningOptimWrapper',
    constructor='LocalLearningOptimWrapperConstructor',
    local=dict(
        num_modules=8,
        method=dict(type='PredSim', beta=0.99),
    ))
