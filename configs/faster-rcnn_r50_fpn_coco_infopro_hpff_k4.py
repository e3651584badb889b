"""Faster R-CNN R50-FPN on COCO, InfoPro + HPFF K=4: the InfoPro K=4 config
with HPFF's hierarchical supervision (HiLo cascade windows of 2 modules) and
Patch Feature Fusion on 2x2 patches (each patch's dense detection outputs are
placed in its region of the feature grid, the loss is taken on the fused maps).
"""
_base_ = './faster-rcnn_r50_fpn_coco_e2e.py'

optim_wrapper = dict(
    type='LocalLearningOptimWrapper',
    constructor='LocalLearningOptimWrapperConstructor',
    local=dict(
        boundaries=['layer2.3', 'layer3.2', 'layer3.5'],
        method=dict(type='InfoPro', recon_weights=(1.5, 1.5), task_weights=(1., 1.)),
        hilo=dict(cascade=2, independent_weight=0.001, cascade_weight=0.999),
        pff=dict(patches=2),
    ))
