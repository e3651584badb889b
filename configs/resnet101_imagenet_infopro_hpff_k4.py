"""ResNet-101 ImageNet, InfoPro + HPFF K=4 (HPFF Table 2, R101 InfoPro+HPFF:
21.14 / 5.49 top-1 / top-5 error, vs 22.81 / 6.54 for InfoPro K=4).

As HPFF's ImageNet code (ALGORITHMS.md §5.4):

* cascade windows of 2 modules only (their independent path is commented
  out): cascade heads on m2 and m3, each at full weight; module m1 learns
  from the cascade of m2; the task loss closes the last window;
* each cascade loss is the hard-coded 5 x BCE_PFF + 0.75 x CE, with psi for
  1024 channels (1x1 -> 256, 3x3 s2 -> 256, 3x3 s2 -> 512, 1x1 -> 2048, GAP,
  FC) and the decoder for 14 x 14 maps (1x1 -> 128, up to 112, 3x3 -> 64,
  *down* to 56, 3x3 -> 32, up 112, 3x3 -> 16, up 224, 3x3 -> 3);
* PFF as that code (``variant='output'``): the reconstruction is split into
  2 x 2 quadrants and their BCEs summed, i.e. 4 x the image BCE (no feature
  patching, no memory saved).

The paper's PFF (one head on the 2 x 2 feature patches):
``resnet101_imagenet_infopro_hpff_k4_pff-paper.py``. The paper's HiLo with the
independent path: hilo=dict(cascade=2, independent=True,
independent_weight=0.001, cascade_weight=0.999).

Recipe: mmpretrain's 8 x 32 (batch 256, SGD lr 0.1 Nesterov, weight decay 1e-4,
cosine per epoch, 90 epochs, ``zero_init_residual=True``; see
``resnet101_imagenet_e2e.py``), the authors' lr per sample. HPFF's own recipe
(batch 128 on one GPU, lr 0.05, ``zero_init_residual=False``):
``resnet101_imagenet_infopro_hpff_k4_1xb128.py``.
"""
_base_ = ['./resnet101_imagenet_infopro_k4.py', './_base_/local/hpff_imagenet.py']

optim_wrapper = dict(
    local=dict(
        _base_.pop('local_hilo'),
        method=dict(decoder=dict(_delete_=True, type='HPFFImageNetDecoder', ratio=16))))
