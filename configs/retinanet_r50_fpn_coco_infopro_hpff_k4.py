"""RetinaNet R50-FPN on COCO, InfoPro + HPFF K=4: box-aware RetinaHead plus
InfoPro's reconstruction decoder on each local module (InfoPro's dense
lambdas: reconstruction 1.5, task 1.0), HiLo cascade windows of 2 modules and
PFF on 2x2 patches (dense outputs tiled on the feature grid).

HiLo and PFF as the HPFF paper defines them (ALGORITHMS.md §5.1), InfoPro's
dense lambdas (§2.6); no public code trains this detector locally (§0).
"""
_base_ = [
    './retinanet_r50_fpn_coco_e2e.py',
    './_base_/local/infopro_dense.py',
    './_base_/local/hpff.py',
]

optim_wrapper = _base_.pop('local_learning')
optim_wrapper.local.update(
    _base_.pop('local_hilo'), boundaries=['layer2.3', 'layer3.2', 'layer3.5'])
