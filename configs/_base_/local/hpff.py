"""HPFF as the paper defines it (ALGORITHMS.md §5.1): HiLo (``hilo.py``: an
independent head on every module, cascade windows of 2, 0.001 / 0.999) and
PFF on 2 x 2 feature patches (the same head on each patch, predictions
fused, one loss on the fusion; ``variant='paper'``, the schema's default).
Used where no HPFF code is public (Cityscapes, detection, ViT; §0)."""
_base_ = './hilo.py'

local_hilo = dict(pff=dict(patches=2))
