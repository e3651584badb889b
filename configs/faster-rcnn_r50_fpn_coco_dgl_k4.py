"""Faster R-CNN R50-FPN on COCO, DGL K=4 with box-aware local heads.

Each of the first three modules is trained by mmdet's RetinaHead (two stacked
convs) on its own feature at its stride (MAN++'s per-level auxiliary detection
head), with RetinaNet's assigner, box coder, focal and L1 losses; module 4
(layer4, FPN, RPN, RoI head) by the detector's own losses. The FPN inputs made
by earlier modules are detached. Modules: stem..layer2 (stem and layer1 are
frozen by the detector config) | layer3.0-2 | layer3.3-5 | layer4 + heads.

DGL as ALGORITHMS.md §3 (one head per module, weight 1; box-aware here); no
public local-learning code trains this detector (§0).
"""
_base_ = ['./faster-rcnn_r50_fpn_coco_e2e.py', './_base_/local/dgl.py']

optim_wrapper = _base_.pop('local_learning')
optim_wrapper.local.update(boundaries=['layer2.3', 'layer3.2', 'layer3.5'])
