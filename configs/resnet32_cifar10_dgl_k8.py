"""ResNet-32 CIFAR-10, DGL, K=8 (MLAAN Table I row "DGL", R32 K=8: 11.63 %;
InfoPro Table 2 DGL K=8: 14.17 %).

DGL as InfoPro's code runs it (ALGORITHMS.md §3): psi 1c2f + CE on every local
module of InfoPro's K=8 split (§1.2), outputs detached; last module GAP + FC.
"""
_base_ = ['./resnet32_cifar10_e2e.py', './_base_/local/dgl_cifar.py']

optim_wrapper = _base_.pop('local_learning')
optim_wrapper.local.update(num_modules=8)
