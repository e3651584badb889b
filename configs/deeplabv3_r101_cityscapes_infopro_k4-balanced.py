"""DeepLabV3-R101 on Cityscapes, InfoPro K=4 with memory-balanced modules
(InfoPro's "InfoPro*" idea): the boundaries split the measured activation
memory of the backbone's blocks into 4 near-equal parts instead of taking
HPFF's ImageNet end points. Same heads and lambdas as the K=4 config."""
_base_ = './deeplabv3_r101_cityscapes_infopro_k4.py'

optim_wrapper = dict(local=dict(split='memory'))
