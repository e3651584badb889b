"""DGL (Belilovsky et al. 2020; ALGORITHMS.md §3): one auxiliary classifier
per local module, cross-entropy with weight 1, outputs detached. psi is the
task's default (``methods.default_classifier``: InfoPro's CIFAR 1c2f for
small classification features, its ImageNet psi for wide ones, its ViT psi
for tokens, its segmentation psi, mmdet's RetinaHead for detectors)."""
_base_ = './wrapper.py'

local_learning = dict(local=dict(method=dict(type='DGL')))
