"""ResNet-32 CIFAR-10, DGL with independent + cascade heads, K=16 (HPFF
ablation "IL+CL": 9.44 % test error): ``resnet32_cifar10_dgl_hpff_k16.py``
without PFF (the HPFF loop of ALGORITHMS.md §5.2 with DGL heads, psi 2c2f)."""
_base_ = ['./resnet32_cifar10_e2e.py', './_base_/local/dgl_cifar.py', './_base_/local/hilo_loop.py']

optim_wrapper = _base_.pop('local_learning')
optim_wrapper.local.update(_base_.pop('local_hilo'), num_modules=16)
optim_wrapper.local.method.classifier.arch = '2c2f'
