"""RetinaNet R50-FPN on COCO, DGL K=4 as MAN++ trains it: an auxiliary
RetinaHead (mmdet's, two stacked convs, RetinaNet's assigner/coder/losses)
supervises each local module on the pyramid level of its stride; the FPN
inputs made by earlier modules are detached. Modules: stem..layer2 (stem and
layer1 frozen by the detector config) | layer3.0-2 | layer3.3-5 | layer4 +
FPN + RetinaHead.

DGL as ALGORITHMS.md §3; no public local-learning code for this detector is
among the sources read (§0).
"""
_base_ = ['./retinanet_r50_fpn_coco_e2e.py', './_base_/local/dgl.py']

optim_wrapper = _base_.pop('local_learning')
optim_wrapper.local.update(boundaries=['layer2.3', 'layer3.2', 'layer3.5'])
