"""RetinaNet R50-FPN on COCO, InfoPro + HPFF K=4: box-aware RetinaHead plus
InfoPro's reconstruction decoder on each local module (InfoPro's dense
lambdas: reconstruction 1.5, task 1.0), HiLo cascade windows of 2 modules and
PFF on 2x2 patches (dense outputs tiled on the feature grid).
"""
_base_ = './retinanet_r50_fpn_coco_e2e.py'

optim_wrapper = dict(
    type='LocalLearningOptimWrapper',
    constructor='LocalLearningOptimWrapperConstructor',
    local=dict(
        boundaries=['layer2.3', 'layer3.2', 'layer3.5'],
        method=dict(type='InfoPro', recon_weights=(1.5, 1.5), task_weights=(1., 1.)),
        hilo=dict(cascade=2, independent_weight=0.001, cascade_weight=0.999),
        pff=dict(patches=2),
    ))
