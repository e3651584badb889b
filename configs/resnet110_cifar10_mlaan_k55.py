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
_base_ = './resnet110_cifar10_e2e.py'

optim_wrapper = dict(
    type='LocalLearningOptimWrapper',
    constructor='LocalLearningOptimWrapperConstructor',
    local=dict(
        num_modules=55,
        stem='merged',
        bn_updates='per-path',
        method=dict(type='DGL', classifier=dict(type='ConvAuxClassifier', arch='0c1f')),
        hilo=dict(cascade=2, independent_weight=0.001, cascade_weight=0.999,
                  first_independent=False, task_cascade_weight=1.0),
        mlaan=dict(momentum=0.995, ema='last', path='cascade', ema_branch='frozen',
                   table='mlaan'),
    ))
