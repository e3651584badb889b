"""ResNet-32 CIFAR-10, DGL with independent heads only, K=16 (HPFF ablation
"IL": 14.08 % test error, the DGL row): plain DGL with HPFF's psi 2c2f.

DGL as ALGORITHMS.md §3, HPFF's ablation (§5.6).
"""
_base_ = ['./resnet32_cifar10_e2e.py', './_base_/local/dgl_cifar.py']

optim_wrapper = _base_.pop('local_learning')
optim_wrapper.local.update(num_modules=16, hilo=None)  # hilo=None: plain DGL
optim_wrapper.local.method.classifier.arch = '2c2f'
