"""DeepLabV3-R101 on Cityscapes, InfoPro + HPFF K=4 (HPFF Table 4: 80.04 SS /
81.13 MS+flip mIoU): HiLo cascade windows of 2 modules, PFF on 2x2 patches."""
_base_ = './deeplabv3_r101_cityscapes_e2e.py'

optim_wrapper = dict(
    type='LocalLearningOptimWrapper',
    constructor='LocalLearningOptimWrapperConstructor',
    local=dict(
        num_modules=4,
        split='hpff-imagenet',
        method=dict(type='InfoPro', recon_weights=(1.5, 1.5), task_weights=(1., 1.)),
        hilo=dict(cascade=2, independent_weight=0.001, cascade_weight=0.999),
        pff=dict(patches=2),
    ))
