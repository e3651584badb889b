"""ResNet-110 CIFAR-10, InfoPro (softmax), K=32 (MLAAN Table I row
"InfoPro", R110 K=32: 12.26 % test error).

MLAAN's K=32 split (ALGORITHMS.md §1.2: 31 split points, the stem inside
module m1, so no stem segment shifts the index). With HPFF/MLAAN's
(5, 0.5) -> (0, 0) the last local module (r = 30/30) would get lambda = (0, 0)
and never train (mmlocal refuses that plan); InfoPro publishes no K=32
values, so this config uses InfoPro's R110 K=16 end values (§2.2: recon
5 -> 0, task 0 -> 1) over r = m / (K - 2), psi 1c2f, CE.
"""
_base_ = ['./resnet110_cifar10_e2e.py', './_base_/local/infopro.py']

optim_wrapper = _base_.pop('local_learning')
optim_wrapper.local.update(num_modules=32)
optim_wrapper.local.method.update(recon_weights=(5., 0.), task_weights=(0., 1.))
