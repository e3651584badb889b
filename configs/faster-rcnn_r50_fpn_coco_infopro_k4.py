"""Faster R-CNN R50-FPN on COCO, InfoPro K=4 (InfoPro's journal version trains
this detector with MMDetection): each local module is trained by a box-aware
RetinaHead on its stride plus InfoPro's reconstruction decoder, with InfoPro's
dense-prediction lambdas (reconstruction 1.5, task 1.0, as its Cityscapes
setting). Same modules as the DGL K=4 config.
"""
_base_ = './faster-rcnn_r50_fpn_coco_e2e.py'

optim_wrapper = dict(
    type='LocalLearningOptimWrapper',
    constructor='LocalLearningOptimWrapperConstructor',
    local=dict(
        boundaries=['layer2.3', 'layer3.2', 'layer3.5'],
        method=dict(type='InfoPro', recon_weights=(1.5, 1.5), task_weights=(1., 1.)),
    ))
