"""ResNet-110 CIFAR-10, DGL + MLAAN, K=55 (MLAAN Table I row "DGL*", R110
K=55: 5.42 % test error).

As ``resnet32_cifar10_dgl_mlaan_k16.py`` (MLAAN's ``resnetDGLbin.py``,
ALGORITHMS.md §6.2-6.3): ``stem='merged'``, S = 54 segments, independent and
cascade ``auxDGL`` heads (0.001 / 0.999) from segment 2 on over windows of 3,
the leap copies of §6.5's R110 S=54 table, the EMA of the last module only
(r = 0.995), the task loss on the cascade path with weight 1.
"""
_base_ = ['./resnet110_cifar10_e2e.py', './_base_/local/dgl.py', './_base_/local/mlaan.py']

optim_wrapper = _base_.pop('local_learning')
optim_wrapper.local.update(_base_.pop('local_hilo'), num_modules=55)
optim_wrapper.local.method.classifier = dict(type='AuxDGLClassifier')
optim_wrapper.local.hilo.cascade = 3
