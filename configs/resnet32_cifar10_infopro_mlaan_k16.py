"""ResNet-32 CIFAR-10, InfoPro + MLAAN, K=16 (MLAAN Table I row "InfoPro*",
R32 K=16: 6.37 % test error).

MLAAN's k=3 InfoPro code, ``resnetInfoProbin.py`` (ALGORITHMS.md §6.2-6.3),
with ``stem='merged'`` (§1.1): from segment 2 on (module m4) an independent
head (weight 0.001: InfoPro's decoder + psi with the code's *default*
arguments, 1c2f and SupCon) and a cascade head over 3 segments (weight
0.999: decoder + psi 1c2f, CE), the leap copies of §6.5's R32 S=15 table in
front of the cascade head, the EMA of the last module (r = 0.995), the task
loss on the cascade path with weight 1. lambda1 = 5 (1 - r), lambda2 =
0.5 (1 - r) with r = i / (K - 2) by segment i, as HPFF's loop; the code's
ratio uses the *stage* index (a defect, §8) that ALGORITHMS.md does not give
exactly enough to reproduce.
"""
_base_ = './resnet32_cifar10_e2e.py'

optim_wrapper = dict(
    type='LocalLearningOptimWrapper',
    constructor='LocalLearningOptimWrapperConstructor',
    local=dict(
        num_modules=16,
        stem='merged',
        method=dict(type='InfoPro', recon_weights=(5., 0.), task_weights=(0.5, 0.)),
        hilo=dict(cascade=3, independent_weight=0.001, cascade_weight=0.999,
                  first_independent=False, task_cascade_weight=1.0,
                  independent_method=dict(type='InfoPro', recon_weights=(5., 0.),
                                          task_weights=(0.5, 0.), task_loss='contrast')),
        mlaan=dict(momentum=0.995, ema='last', path='cascade'),
    ))
