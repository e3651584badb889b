# CIFAR ResNet-110 (He et al. 2016; mmlocal's CifarResNet: 16-channel stem,
# widths 16/32/64, option-B shortcuts as in the InfoPro/HPFF/MLAAN code)
# + global average pooling + linear classifier on the 64-d feature.
model = dict(
    type='ImageClassifier',
    backbone=dict(type='CifarResNet', depth=110),
    neck=dict(type='GlobalAveragePooling'),
    head=dict(
        type='LinearClsHead',
        num_classes=10,
        in_channels=64,
        loss=dict(type='CrossEntropyLoss', loss_weight=1.0),
    ))
