"""ResNet-32 CIFAR-10, DGL + MLAAN, K=16 (MLAAN Table I row "DGL*", R32
K=16: 6.36 % test error).

MLAAN's k=3 DGL code, ``resnetDGLbin.py`` (ALGORITHMS.md §6.2-6.3), segment
by segment (the stem is in no segment, ``stem='merged'``):

* segments i = 2..S-2 (modules m4..m15): an independent head (weight
  wx = 0.001) and a cascade head over (E_{i-2}, E_{i-1}, E_i) (weight
  wy = 0.999), both the ``auxDGL`` head (§3: 3 x [1x1 conv -> 128, BN,
  ReLU], GAP, 3 x [Linear -> 512, BN1d, ReLU], Linear) with CE;
* segments 0 and 1 have no head; the cascade of segment 2 reaches back
  through them and the stem;
* leap-augmented modules on the cascade path: trainable copies of the later
  blocks of §6.5's R32 S=15 table, plus a frozen EMA copy of the first one
  (r = 0.995), updated for the last module only, as the CIFAR code;
* the task loss: CE(fc(y)) of the cascade path only, so its gradient reaches
  the two modules below the last one with weight 1 (the x-path loss is
  computed but overwritten in that code).
"""
_base_ = ['./resnet32_cifar10_e2e.py', './_base_/local/dgl.py', './_base_/local/mlaan.py']

optim_wrapper = _base_.pop('local_learning')
optim_wrapper.local.update(_base_.pop('local_hilo'), num_modules=16)
optim_wrapper.local.method.classifier = dict(type='AuxDGLClassifier')
optim_wrapper.local.hilo.cascade = 3
