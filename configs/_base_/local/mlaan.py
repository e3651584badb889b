"""MLAAN's leap-augmented modules on the authors' HiLo loop (``hilo_loop.py``;
MLAAN ``CIFAR-SVHN-STL/networks/resnetMLAAN.py`` and ``resnet*bin.py``,
ALGORITHMS.md §6.2-6.5): the task loss on the cascade path only, so its
gradient reaches the modules below the last one with weight 1
(``task_cascade_weight=1.0``); leap copies of later blocks in front of the
cascade heads with an EMA copy of the first (r = 0.995) of which only the
last module's follows its live block (``ema='last'``, the CIFAR code). The
k=3 files (``resnet*bin.py``) set ``hilo.cascade=3``."""
_base_ = './hilo_loop.py'

local_hilo = dict(
    hilo=dict(task_cascade_weight=1.0),
    mlaan=dict(momentum=0.995, ema='last', path='cascade'))
