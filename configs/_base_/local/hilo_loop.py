"""HiLo as the authors' CIFAR code runs it, segment by segment (HPFF
``network/resnetInfoPro_HPFF.py``, ALGORITHMS.md §5.2; MLAAN's
``resnetMLAAN.py`` / ``resnet*bin.py``, §6.2-6.3): the stem is in no segment
(``stem='merged'``, §1.1), no independent head runs before the first full
cascade window (``first_independent=False``: those segments and the stem
learn from the first cascade), and BN running statistics are updated as
often as that loop runs each block (``bn_updates='per-path'``). Weights
wx = 0.001, wy = 0.999 (``hilo.py``)."""
_base_ = './hilo.py'

local_hilo = dict(
    stem='merged',
    bn_updates='per-path',  # BN statistics as often as the authors' loop runs each block
    hilo=dict(first_independent=False))
