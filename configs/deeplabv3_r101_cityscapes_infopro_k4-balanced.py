"""DeepLabV3-R101 on Cityscapes, InfoPro K=4 with modules balanced on the
measured peak (InfoPro's "InfoPro*" idea): boundaries after layer3[2], [12]
and [22] instead of HPFF's ImageNet end points (layer3[0], [9], [17]). Same
heads and lambdas as the K=4 config.

Why these points: a module's peak is its graph plus its local heads' step
(InfoPro's decoder reconstructs the full 512x1024 crop), and the last
module's is its graph plus the ASPP and FCN heads and the task loss. At 2 x
512x1024 (one GPU's share of batch 8) this split has the lowest largest
module peak (``mmlocal.analysis.peaks.measure_peak_costs`` +
``peak_balanced_indices``); balancing block activations alone put the last
boundary at layer3[19] and left the last module the largest. Reproduce with
``python tools/analysis/split_peaks.py configs/deeplabv3_r101_cityscapes_infopro_k4.py
--batch-size 2 --input-size 512 1024 --cfg-options model.pretrained=None``.
Measured peak in docs/benchmarks.md ("DeepLabV3 Cityscapes").

Sources: ALGORITHMS.md §1.4 (K=4 has no public code), §2.6 (heads).
"""
_base_ = './deeplabv3_r101_cityscapes_infopro_k4.py'

# explicit boundaries instead of the base's num_modules (giving both is refused)
optim_wrapper = dict(local=dict(
    num_modules=None,
    boundaries=['backbone.layer3.2', 'backbone.layer3.12', 'backbone.layer3.22']))
