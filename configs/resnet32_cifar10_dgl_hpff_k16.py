"""ResNet-32 CIFAR-10, DGL + HPFF (HiLo k=2 + PFF n=2), K=16 (HPFF Table 1,
R32 K=16 DGL+HPFF: 8.94 % test error; ablation "IL+CL+PFF").

HPFF released only its InfoPro+HPFF code; this is that loop
(ALGORITHMS.md §5.2, ``stem='merged'``) with DGL heads: from segment 1 on
(module m3) an independent psi 2c2f + CE (weight 0.001) and a cascade psi
2c2f + CE over the window (E_{i-1}, E_i) (weight 0.999); segment 0 and the
stem learn from the first cascade; the task loss closes the last window.
PFF is the paper's (§5.1: one psi on the 2 x 2 feature patches, logits
averaged): the code's PFF patches only the reconstruction decoder, which DGL
does not have. The patches run batched (``pff.mode='batched'``: one call of
the head on the n^2 patches with per-patch BN statistics, the same gradients
as one patch at a time): on this config the step's peak is in the backbone's
window, so it costs no memory (144.4 MB either way) and takes 2.99x E2E's
step time against 3.83x sequential (docs/benchmarks.md, Speed).
"""
_base_ = ['./resnet32_cifar10_e2e.py', './_base_/local/dgl_cifar.py', './_base_/local/hilo_loop.py']

optim_wrapper = _base_.pop('local_learning')
optim_wrapper.local.update(
    _base_.pop('local_hilo'), num_modules=16, pff=dict(patches=2, variant='paper', mode='batched'))
optim_wrapper.local.method.classifier.arch = '2c2f'
