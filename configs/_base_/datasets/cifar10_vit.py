# CIFAR-10 for ViT-B/16 (HPFF supplement Table 2): the class-folder CIFAR-10
# of cifar10_folder.py, images resized from 32x32 to 224x224 (bicubic) so that
# 16x16 patches give the 14x14 token grid ViT-B/16 is built for; augmentation
# as for the ResNets (reflect-pad 4 + random crop 32 + flip) before the resize.
# Batch 1024. Native 32x32 inputs (a 2x2 token grid): drop the Resize steps
# and set model.backbone.img_size=32.
#
# Data root: see cifar10_folder.py (override the three dataset data_root keys).
_base_ = './cifar10_folder.py'

img_size = 224
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='RandomCrop', crop_size=32, padding=4, padding_mode='reflect'),
    dict(type='RandomFlip', prob=0.5, direction='horizontal'),
    dict(type='Resize', scale=img_size, interpolation='bicubic'),
    dict(type='PackInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=img_size, interpolation='bicubic'),
    dict(type='PackInputs'),
]

train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(dataset=dict(pipeline=test_pipeline))
test_dataloader = dict(dataset=dict(pipeline=test_pipeline))
