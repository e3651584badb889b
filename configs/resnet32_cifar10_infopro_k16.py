"""ResNet-32 CIFAR-10, InfoPro (softmax), K=16, in the HPFF/MLAAN setting
(their baseline row "InfoPro", R32 K=16: 12.93 % test error, HPFF Table 1 /
MLAAN Table I).

lambda1 = 5 (1 - r), lambda2 = 0.5 (1 - r), CE (HPFF and MLAAN READMEs,
ALGORITHMS.md §2.2 last paragraph), psi 1c2f and InfoPro's CIFAR decoder.
Their code indexes the schedule by *segment* (§1.1, §5.2): the stem is in no
segment (``stem='merged'``: no head reads it, the first segment's loss reaches
through it) and r = i / (K - 2) for segments i = 0 .. K-3, so r stops at
13/14 and the last local module keeps lambda = (0.357, 0.036). InfoPro's own
indexing (r = m / (K - 2) over all K-1 local modules, the stem one of them)
would give the last local module lambda = (0, 0): that module would never
train, and mmlocal refuses such a plan. InfoPro's own setting is
``resnet32_cifar10_infopro-contrast_k16.py``.
"""
_base_ = ['./resnet32_cifar10_e2e.py', './_base_/local/infopro_cifar.py']

optim_wrapper = _base_.pop('local_learning')
optim_wrapper.local.update(num_modules=16, stem='merged')
