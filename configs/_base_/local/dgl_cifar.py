"""DGL as InfoPro's, HPFF's and MLAAN's CIFAR code run it (ALGORITHMS.md §3,
§2.4): psi is InfoPro's ``AuxClassifier`` 1c2f (``ConvAuxClassifier``,
``arch='1c2f'``; HPFF's heads are 2c2f: set ``method.classifier.arch``)."""
_base_ = './dgl.py'

local_learning = dict(
    local=dict(method=dict(classifier=dict(type='ConvAuxClassifier', arch='1c2f'))))
