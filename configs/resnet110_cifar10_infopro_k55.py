"""ResNet-110 CIFAR-10, InfoPro (softmax), K=55, in the HPFF/MLAAN setting
(their baseline row "InfoPro", R110 K=55: 13.22 % test error).

As ``resnet32_cifar10_infopro_k16.py``: lambda = (5, 0.5) (1 - r), CE, psi
1c2f, indexed by segment as their code (ALGORITHMS.md §1.1, §5.2;
``stem='merged'``, r = i / 53 for segments i = 0..52, never 1).
"""
_base_ = ['./resnet110_cifar10_e2e.py', './_base_/local/infopro_cifar.py']

optim_wrapper = _base_.pop('local_learning')
optim_wrapper.local.update(num_modules=55, stem='merged')
