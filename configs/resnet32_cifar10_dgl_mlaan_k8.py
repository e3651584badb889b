"""ResNet-32 CIFAR-10, DGL + MLAAN, K=8 (MLAAN Table I row "DGL*", R32 K=8:
6.25 % test error).

As ``resnet32_cifar10_dgl_mlaan_k16.py`` (MLAAN's ``resnetDGLbin.py``,
ALGORITHMS.md §6.2-6.3) on the K=8 split (§1.2; no stem boundary, the stem
runs in module m1): segments 0 and 1 have no head, from segment 2 on an
independent and a cascade ``auxDGL`` head (0.001 / 0.999) over windows of 3,
the leap copies of §6.5's R32 S=8 table with the EMA of the last module,
the task loss on the cascade path with weight 1.
"""
_base_ = ['./resnet32_cifar10_e2e.py', './_base_/local/dgl.py', './_base_/local/mlaan.py']

optim_wrapper = _base_.pop('local_learning')
optim_wrapper.local.update(_base_.pop('local_hilo'), num_modules=8)
optim_wrapper.local.pop('stem')  # the K=8 split has no stem boundary: the stem runs in m1
optim_wrapper.local.method.classifier = dict(type='AuxDGLClassifier')
optim_wrapper.local.hilo.cascade = 3
