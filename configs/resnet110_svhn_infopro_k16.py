"""ResNet-110 SVHN, InfoPro (contrast), K=16: lambdas of InfoPro's README."""
_base_ = './resnet110_svhn_e2e.py'

optim_wrapper = dict(
    type='LocalLearningOptimWrapper',
    constructor='LocalLearningOptimWrapperConstructor',
    local=dict(
        num_modules=16,
        method=dict(type='InfoPro', recon_weights=(5., 0.5), task_weights=(0.2, 1.),
                    task_loss='contrast'),
    ))
