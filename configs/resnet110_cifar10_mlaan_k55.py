"""ResNet-110 CIFAR-10, MLAAN, K=55 (MLAAN Table I row "MLAAN", R110 K=55:
6.02 % test error; Table III memory: BP 9.26 GB, MLAAN 2.76 GB).

As ``resnet32_cifar10_mlaan_k16.py``: the model MLAAN's ``train.py`` builds,
``CIFAR-SVHN-STL/networks/resnetMLAAN.py`` (github.com/Wendy231015/MLAAN @
70effbe), here with ``local_module_num`` 54 (``config2.py`` line 28: every
block a segment, S = 54, the papers' K=55): ``stem='merged'``, from segment 1
on an independent and a cascade ``auxMLAAN`` head (GAP -> Linear, CE;
``ConvAuxClassifier`` ``arch='0c1f'``) with weights 0.001 / 0.999 over
windows of 2 (lines 303-326), the leap copies of the R110 S=54 table of
``configAuxPlus_new.py`` (line 29) in front of the cascade heads, frozen EMA
copies of which only the last module's follows its live block (r = 0.995,
lines 182-184, 342-344), the task loss on the cascade path with weight 1
(lines 328-340), BN running statistics updated as often as that loop runs
each block (``bn_updates='per-path'``).
"""
_base_ = ['./resnet110_cifar10_e2e.py', './_base_/local/dgl.py', './_base_/local/mlaan.py']

optim_wrapper = _base_.pop('local_learning')
optim_wrapper.local.update(_base_.pop('local_hilo'), num_modules=55)
optim_wrapper.local.method.classifier = dict(type='ConvAuxClassifier', arch='0c1f')
optim_wrapper.local.mlaan.update(ema_branch='frozen', table='mlaan')
