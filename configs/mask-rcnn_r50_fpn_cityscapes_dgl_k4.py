"""Mask R-CNN R50-FPN on Cityscapes instances, DGL K=4: the mechanism of the
Faster R-CNN config (faster-rcnn_r50_fpn_coco_dgl_k4.py) on mmdet's instance
segmentation detector. Each of the first three modules is trained by mmdet's
RetinaHead on its own feature at its stride (MAN++'s per-level auxiliary
detection head, on the instances' boxes); module 4 (layer4, FPN, RPN, RoI box
and mask heads) by the detector's own losses. The FPN inputs made by earlier
modules are detached. Modules: stem..layer2 (stem and layer1 frozen by the
detector config) | layer3.0-2 | layer3.3-5 | layer4 + heads.

No paper reports local learning on this detector: it exists because a
detection user trains instance segmentation with the same toolbox, and it is
checked (gradient isolation, every parameter trained) on the real Cityscapes
frame's instances, not measured for accuracy.

DGL as ALGORITHMS.md §3; no public local-learning code trains this detector (§0).
"""
_base_ = ['./mask-rcnn_r50_fpn_cityscapes_e2e.py', './_base_/local/dgl.py']

optim_wrapper = _base_.pop('local_learning')
optim_wrapper.local.update(boundaries=['layer2.3', 'layer3.2', 'layer3.5'])
