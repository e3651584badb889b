"""ResNet-32 CIFAR-10, InfoPro + HPFF, K=16, as the authors' CIFAR code: the
independent heads are psi + CE only, the cascade heads InfoPro (decoder +
psi, lambdas 5(1-r), 0.5(1-r)); the first module learns from the cascade."""
_base_ = './resnet32_cifar10_e2e.py'

optim_wrapper = dict(
    type='LocalLearningOptimWrapper',
    constructor='LocalLearningOptimWrapperConstructor',
    local=dict(
        num_modules=16,
        method=dict(type='InfoPro', recon_weights=(5., 0.), task_weights=(0.5, 0.),
                    classifier=dict(type='ConvAuxClassifier', arch='2c2f')),
        hilo=dict(cascade=2, independent_weight=0.001, cascade_weight=0.999,
                  first_independent=False,
                  independent_method=dict(
                      type='DGL', classifier=dict(type='ConvAuxClassifier', arch='2c2f'))),
        pff=dict(patches=2),
    ))
