"""DeepLabV3-R101 on Cityscapes, InfoPro + HPFF K=4 (HPFF supplement Table 4:
80.04 SS / 81.13 MS+flip mIoU). HPFF's Cityscapes code is not public
(ALGORITHMS.md §0, §1.4): HiLo and PFF as the paper defines them (§5.1: an
independent head on every module, 0.001; cascade windows of 2, 0.999; the same
head on 2x2 feature patches), the split of HPFF's ImageNet code (inferred,
§1.4) and InfoPro's segmentation heads and lambdas (§2.6)."""
_base_ = [
    './deeplabv3_r101_cityscapes_e2e.py',
    './_base_/local/infopro_dense.py',
    './_base_/local/hpff.py',
]

optim_wrapper = _base_.pop('local_learning')
optim_wrapper.local.update(_base_.pop('local_hilo'), num_modules=4, split='hpff-imagenet')
