"""DeepLabV3-R101 on Cityscapes, InfoPro K=2: the split of InfoPro's mmseg fork
(module 1 = stem .. layer3[12]); lambda recon 1.5, task 1 (its 512x1024 bs 8
config). ASPP and the FCN auxiliary head train with the last module.

Source: InfoPro's ``Semantic segmentation/mmsegmentation-master``
(``forward_train1``, ``configs/deeplabv3/infopro_*.py``), ALGORITHMS.md §1.4, §2.6.
"""
_base_ = ['./deeplabv3_r101_cityscapes_e2e.py', './_base_/local/infopro_dense.py']

optim_wrapper = _base_.pop('local_learning')
optim_wrapper.local.update(boundaries=['backbone.layer3.12'])
