"""DeepLabV3-R101 on Cityscapes, InfoPro K=2: the split of InfoPro's mmseg fork
(module 1 = stem .. layer3[12]); lambda recon 1.5, task 1 (its 512x1024 bs 8
config). ASPP and the FCN auxiliary head train with the last module."""
_base_ = './deeplabv3_r101_cityscapes_e2e.py'

optim_wrapper = dict(
    type='LocalLearningOptimWrapper',
    constructor='LocalLearningOptimWrapperConstructor',
    local=dict(
        boundaries=['backbone.layer3.12'],
        method=dict(type='InfoPro', recon_weights=(1.5, 1.5), task_weights=(1., 1.)),
    ))
