"""ResNet-32 CIFAR-10, DGL, K=16 (HPFF Table 1 / MLAAN Table I row "DGL",
R32 K=16: 14.08 % test error; InfoPro Table 2 DGL K=16: 16.21 %).

DGL as InfoPro's, HPFF's and MLAAN's code run it (ALGORITHMS.md §3): every
local module, the stem included (InfoPro's split, §1.2: [0,0] then every block
up to [3,3]), has its own psi (InfoPro's 1c2f) trained by cross-entropy with
weight 1; the output is detached. The last module is GAP + FC with plain CE.
"""
_base_ = ['./resnet32_cifar10_e2e.py', './_base_/local/dgl_cifar.py']

optim_wrapper = _base_.pop('local_learning')
optim_wrapper.local.update(num_modules=16)
