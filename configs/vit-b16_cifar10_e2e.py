# ViT-B/16 on CIFAR-10 from scratch, end-to-end backprop (HPFF supplement
# Table 2: 88.99% accuracy, 5.43 GB; batch 1024, 200 epochs): the baseline of
# vit-b16_cifar10_dgl*.py.
#
# The paper gives only the model, batch size and epochs; the rest is
# mmpretrain's ViT-B/16 recipe (vit-base-p16_64xb64_in1k.py) scaled to batch
# 1024 (inferred): AdamW lr 0.003 x 1024 / 4096, weight decay 0.3 (none on the
# class token and position embedding), linear warm-up for 10% of the epochs
# then cosine, gradient clipping at norm 1, label smoothing 0.1, Mixup 0.2,
# dropout 0.1. Images resized to 224 (configs/_base_/datasets/cifar10_vit.py).
_base_ = [
    'mmpretrain::_base_/models/vit-base-p16.py',
    './_base_/datasets/cifar10_vit.py',
    './_base_/default_runtime.py',
]
custom_imports = dict(
    imports=['mmlocal', 'mmlocal.datasets'], allow_failed_imports=False)

model = dict(
    backbone=dict(img_size=224),
    head=dict(num_classes=10),
    train_cfg=dict(augments=dict(type='Mixup', alpha=0.2)))

optim_wrapper = dict(
    optimizer=dict(type='AdamW', lr=0.003 * 1024 / 4096, weight_decay=0.3),
    paramwise_cfg=dict(custom_keys={
        '.cls_token': dict(decay_mult=0.0),
        '.pos_embed': dict(decay_mult=0.0),
    }),
    clip_grad=dict(max_norm=1.0))

param_scheduler = [
    dict(type='LinearLR', start_factor=1e-4, by_epoch=True, begin=0, end=20,
         convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', T_max=180, by_epoch=True, begin=20, end=200,
         convert_to_iter_based=True),
]
train_cfg = dict(by_epoch=True, max_epochs=200, val_interval=1)
val_cfg = dict()
test_cfg = dict()
auto_scale_lr = dict(base_batch_size=1024)
