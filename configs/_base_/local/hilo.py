"""HiLo, HPFF's hierarchical supervision (ALGORITHMS.md §5.1, §5.2): an
independent head per module with weight wx = 0.001 and a cascade head over
windows of k = 2 modules with weight wy = 0.999 (the weights of HPFF's
``network/resnetInfoPro_HPFF.py`` and MLAAN's ``resnetMLAAN.py`` line 98).

``local_hilo`` holds keys of ``optim_wrapper.local``; merge it with
``optim_wrapper.local.update(_base_.pop('local_hilo'))`` (see ``wrapper.py``)."""
local_hilo = dict(hilo=dict(cascade=2, independent_weight=0.001, cascade_weight=0.999))
