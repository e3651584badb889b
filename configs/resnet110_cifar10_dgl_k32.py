"""ResNet-110 CIFAR-10, DGL, K=32 (MLAAN Table I row "DGL", R110 K=32: 12.51 %
test error): psi 1c2f + CE on every local module of the K=32 split
(ALGORITHMS.md §1.2, §3), outputs detached; last module GAP + FC."""
_base_ = ['./resnet110_cifar10_e2e.py', './_base_/local/dgl_cifar.py']

optim_wrapper = _base_.pop('local_learning')
optim_wrapper.local.update(num_modules=32)
