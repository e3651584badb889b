"""ResNet-110 CIFAR-10, InfoPro + HPFF, K=55, as HPFF's released CIFAR code
(HPFF Table 1, R110 K=55 InfoPro+HPFF: 8.96 % test error).

The loop of ``resnetInfoPro_HPFF.py`` (ALGORITHMS.md §5.2) as in
``resnet32_cifar10_infopro_hpff_k16.py``: ``stem='merged'``, S = 54 segments,
independent psi 2c2f + CE (0.001) and cascade InfoPro heads (0.999) from
segment 1 on, lambda = (5, 0.5) (1 - r) with r = i / 53, the code's PFF
(``variant='quadrant'``: four quadrant decoders, BCEs summed, psi on the
full map). The paper's PFF: ``pff=dict(patches=2, variant='paper')``.
"""
_base_ = './resnet110_cifar10_e2e.py'

optim_wrapper = dict(
    type='LocalLearningOptimWrapper',
    constructor='LocalLearningOptimWrapperConstructor',
    local=dict(
        num_modules=55,
        stem='merged',
        method=dict(type='InfoPro', recon_weights=(5., 0.), task_weights=(0.5, 0.),
                    classifier=dict(type='ConvAuxClassifier', arch='2c2f')),
        bn_updates='per-path',  # BN statistics as often as the authors' loop runs each block
        hilo=dict(cascade=2, independent_weight=0.001, cascade_weight=0.999,
                  first_independent=False,
                  independent_method=dict(
                      type='DGL', classifier=dict(type='ConvAuxClassifier', arch='2c2f'))),
        pff=dict(patches=2, variant='quadrant'),
    ))
