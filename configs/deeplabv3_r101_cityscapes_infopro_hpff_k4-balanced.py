"""DeepLabV3-R101 on Cityscapes, InfoPro + HPFF K=4 with the split balanced on
the measured peak: boundaries after layer3[2], [12] and [15] instead of HPFF's
ImageNet end points (layer3[0], [9], [17]). Same heads, lambdas, HiLo windows
(k=2) and PFF 2x2 as deeplabv3_r101_cityscapes_infopro_hpff.py.

Why these points: each HiLo window keeps two modules' graphs alive, and the
last window also holds the ASPP and FCN heads and the task loss; at 2 x
512x1024 (one GPU's share of batch 8) the split whose largest module peak is
lowest (``mmlocal.analysis.peaks.measure_peak_costs`` + ``peak_balanced_indices``,
within 1% of the optimum, modules as even in blocks as that allows) ends the
windows here. Reproduce with
``python tools/analysis/split_peaks.py configs/deeplabv3_r101_cityscapes_infopro_hpff.py
--batch-size 2 --input-size 512 1024 --cfg-options model.pretrained=None``.
Measured peak in docs/benchmarks.md ("DeepLabV3 Cityscapes"). HPFF published
no Cityscapes split; whether this one trains as well is not measured.

Sources: ALGORITHMS.md §1.4 (K=4 has no public code), §2.6, §5.1.
"""
_base_ = './deeplabv3_r101_cityscapes_infopro_hpff.py'

# explicit boundaries instead of the base's num_modules (giving both is refused)
optim_wrapper = dict(local=dict(
    num_modules=None,
    boundaries=['backbone.layer3.2', 'backbone.layer3.12', 'backbone.layer3.15']))
