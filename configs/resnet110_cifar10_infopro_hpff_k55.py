"""ResNet-110 CIFAR-10, InfoPro + HPFF, K=55, as HPFF's released CIFAR code
(HPFF Table 1, R110 K=55 InfoPro+HPFF: 8.96 % test error).

The loop of ``resnetInfoPro_HPFF.py`` (ALGORITHMS.md §5.2) as in
``resnet32_cifar10_infopro_hpff_k16.py``: ``stem='merged'``, S = 54 segments,
independent psi 2c2f + CE (0.001) and cascade InfoPro heads (0.999) from
segment 1 on, lambda = (5, 0.5) (1 - r) with r = i / 53, the code's PFF
(``variant='quadrant'``: four quadrant decoders, BCEs summed, psi on the
full map). The paper's PFF: ``pff=dict(patches=2, variant='paper')``.
"""
_base_ = [
    './resnet110_cifar10_e2e.py',
    './_base_/local/infopro_cifar.py',
    './_base_/local/hilo_loop.py',
]

optim_wrapper = _base_.pop('local_learning')
optim_wrapper.local.update(
    _base_.pop('local_hilo'), num_modules=55, pff=dict(patches=2, variant='quadrant'))
optim_wrapper.local.method.classifier = dict(type='ConvAuxClassifier', arch='2c2f')
optim_wrapper.local.hilo.independent_method = dict(
    type='DGL', classifier=dict(type='ConvAuxClassifier', arch='2c2f'))
