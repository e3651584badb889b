"""ResNet-32 CIFAR-10, DGL + HPFF (HiLo k=2 + PFF n=2), K=16 (HPFF Table 1,
R32 K=16 DGL+HPFF: 8.94 % test error; ablation "IL+CL+PFF").

HPFF released only its InfoPro+HPFF code; this is that loop
(ALGORITHMS.md §5.2, ``stem='merged'``) with DGL heads: from segment 1 on
(module m3) an independent psi 2c2f + CE (weight 0.001) and a cascade psi
2c2f + CE over the window (E_{i-1}, E_i) (weight 0.999); segment 0 and the
stem learn from the first cascade; the task loss closes the last window.
PFF is the paper's (§5.1: one psi on the 2 x 2 feature patches, logits
averaged): the code's PFF patches only the reconstruction decoder, which DGL
does not have.
"""
_base_ = './resnet32_cifar10_e2e.py'

optim_wrapper = dict(
    type='LocalLearningOptimWrapper',
    constructor='LocalLearningOptimWrapperConstructor',
    local=dict(
        num_modules=16,
        stem='merged',
        method=dict(type='DGL', classifier=dict(type='ConvAuxClassifier', arch='2c2f')),
        bn_updates='per-path',  # BN statistics as often as the authors' loop runs each block
        hilo=dict(cascade=2, independent_weight=0.001, cascade_weight=0.999,
                  first_independent=False),
        pff=dict(patches=2, variant='paper'),
    ))
