"""ResNet-32 CIFAR-10, DGL with cascade heads only, K=16 (HPFF ablation
"CL": 10.51 % test error): the HPFF loop (ALGORITHMS.md §5.2,
``stem='merged'``) without the independent path, each cascade loss at full
weight (an inferred reading: the paper gives no weights for this ablation)."""
_base_ = ['./resnet32_cifar10_e2e.py', './_base_/local/dgl_cifar.py', './_base_/local/hilo_loop.py']

optim_wrapper = _base_.pop('local_learning')
optim_wrapper.local.update(_base_.pop('local_hilo'), num_modules=16)
optim_wrapper.local.method.classifier.arch = '2c2f'
# cascade heads only, at full weight
optim_wrapper.local.hilo = dict(cascade=2, independent=False, cascade_weight=1.0)
