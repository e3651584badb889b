"""HPFF as its ImageNet code runs it (``Exp on Imagenet/networks/
resnetInfoPro_HPFF.py``, ALGORITHMS.md §5.4): cascade windows of 2 modules
only (the independent path is commented out), each cascade loss at full
weight; PFF as that code (``variant='output'``: the reconstruction split into
2 x 2 quadrants and their BCEs summed); BN statistics per path. Its decoder
for 14 x 14 maps (``HPFFImageNetDecoder``) replaces ``method.decoder`` of
``infopro_imagenet.py`` in the config that uses this fragment."""
local_hilo = dict(
    bn_updates='per-path',  # BN statistics as often as the authors' loop runs each block
    hilo=dict(cascade=2, independent=False, cascade_weight=1.0),
    pff=dict(patches=2, variant='output'))
