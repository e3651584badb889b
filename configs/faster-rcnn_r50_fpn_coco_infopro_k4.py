"""Faster R-CNN R50-FPN on COCO, InfoPro K=4 (InfoPro's journal version trains
this detector with MMDetection): each local module is trained by a box-aware
RetinaHead on its stride plus InfoPro's reconstruction decoder, with InfoPro's
dense-prediction lambdas (reconstruction 1.5, task 1.0, as its Cityscapes
setting). Same modules as the DGL K=4 config.

InfoPro's dense lambdas: ALGORITHMS.md §2.6; no public local-learning code
trains this detector (§0).
"""
_base_ = ['./faster-rcnn_r50_fpn_coco_e2e.py', './_base_/local/infopro_dense.py']

optim_wrapper = _base_.pop('local_learning')
optim_wrapper.local.update(boundaries=['layer2.3', 'layer3.2', 'layer3.5'])
