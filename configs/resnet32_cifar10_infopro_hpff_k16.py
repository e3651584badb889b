"""ResNet-32 CIFAR-10, InfoPro + HPFF, K=16, as HPFF's released CIFAR code
(HPFF Table 1, R32 K=16 InfoPro+HPFF: 8.99 % test error; supplement Table 3
"+HPFF n=2": 8.99 %).

The loop of ``resnetInfoPro_HPFF.py`` (ALGORITHMS.md §5.2), segment by
segment (the stem is in no segment, ``stem='merged'``):

* segments i = 1..S-2 (modules m3..m15): an independent head psi 2c2f + CE
  (weight wx = 0.001) and a cascade head over (E_{i-1}, E_i) (weight
  wy = 0.999): lambda1 x PFF-decoder BCE + lambda2 x CE(psi 2c2f), with
  lambda1 = 5 (1 - r), lambda2 = 0.5 (1 - r), r = i / (K - 2) (never 1);
* segment 0 (layer1.0) has no head; the cascade of segment 1 reaches back
  through it and the stem;
* the task loss (weight 1 on the last module) reaches the module before it
  with weight wy.

PFF is the code's (§5.3, ``variant='quadrant'``): psi on the full map, four
quadrant decoders of their own, their BCEs summed. The paper's PFF (one head
on the 2x2 feature patches, predictions averaged) is
``resnet32_cifar10_infopro_hpff_k16_pff-paper.py``.
"""
_base_ = [
    './resnet32_cifar10_e2e.py',
    './_base_/local/infopro_cifar.py',
    './_base_/local/hilo_loop.py',
]

optim_wrapper = _base_.pop('local_learning')
optim_wrapper.local.update(
    _base_.pop('local_hilo'), num_modules=16, pff=dict(patches=2, variant='quadrant'))
optim_wrapper.local.method.classifier = dict(type='ConvAuxClassifier', arch='2c2f')
optim_wrapper.local.hilo.independent_method = dict(
    type='DGL', classifier=dict(type='ConvAuxClassifier', arch='2c2f'))
