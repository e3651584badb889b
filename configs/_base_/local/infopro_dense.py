"""InfoPro for dense prediction, as InfoPro's mmseg fork trains DeepLabV3 on
Cityscapes (ALGORITHMS.md §2.6; its 512x1024 batch-8 config): reconstruction
weight 1.5 and task weight 1, constant over the modules; the task's default
heads (segmentation psi and decoder; box-aware heads for detectors)."""
_base_ = './infopro.py'

local_learning = dict(
    local=dict(
        method=dict(type='InfoPro', recon_weights=(1.5, 1.5), task_weights=(1., 1.))))
