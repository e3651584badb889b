"""DeepLabV3-R101 on Cityscapes, InfoPro + HPFF K=4 (HPFF supplement Table 4:
80.04 SS / 81.13 MS+flip mIoU). HPFF's Cityscapes code is not public
(ALGORITHMS.md §0, §1.4): HiLo and PFF as the paper defines them (§5.1: an
independent head on every module, 0.001; cascade windows of 2, 0.999; the same
head on 2x2 feature patches), the split of HPFF's ImageNet code (inferred,
§1.4) and InfoPro's segmentation heads and lambdas (§2.6)."""
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
