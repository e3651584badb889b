"""Faster R-CNN R50-FPN on COCO, InfoPro + HPFF K=4: the InfoPro K=4 config
with HPFF's hierarchical supervision (HiLo cascade windows of 2 modules) and
Patch Feature Fusion on 2x2 patches (each patch's dense detection outputs are
placed in its region of the feature grid, the loss is taken on the fused maps).

HiLo and PFF as the HPFF paper defines them (ALGORITHMS.md §5.1), InfoPro's
dense lambdas (§2.6); no public code trains this detector locally (§0).
"""
_base_ = [
    './faster-rcnn_r50_fpn_coco_e2e.py',
    './_base_/local/infopro_dense.py',
    './_base_/local/hpff.py',
]

optim_wrapper = _base_.pop('local_learning')
optim_wrapper.local.update(
    _base_.pop('local_hilo'), boundaries=['layer2.3', 'layer3.2', 'layer3.5'])
