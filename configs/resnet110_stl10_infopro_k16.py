"""ResNet-110 STL-10, InfoPro (contrast), K=16: lambdas of InfoPro's README."""
_base_ = './resnet110_stl10_e2e.py'

optim_wrapper = dict(
    type='LocalLearningOptimWrapper',
    constructor='LocalLearningOptimWrapperConstructor',
    local=dict(
        num_modules=16,
        method=dict(type='InfoPro', recon_weights=(20., 10.), task_weights=(0.5, 0.1),
                    task_loss='contrast'),
    ))
