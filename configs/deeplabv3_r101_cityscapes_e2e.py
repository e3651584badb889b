# DeepLabV3-R101-D8 on Cityscapes, end-to-end backprop: mmseg's own config
# (plus the data root and exact resume), so every local-learning delta
# (deeplabv3_r101_cityscapes_<method>*.py) is compared like for like. It is
# InfoPro's segmentation setting: 512x1024 crops, batch 8 (4 GPUs x 2), SGD
# 0.01 poly, 40k iterations, ImageNet-pretrained ResNetV1c
# (open-mmlab://resnet101_v1c, downloaded on first use). mmseg model zoo:
# 77.12 mIoU single-scale, 79.61 with --tta.
#
# SyncBN is kept: mmengine's Runner reverts it to BN when not distributed.
# Data: the standard Cityscapes layout (leftImg8bit/, gtFine/ with
# *_labelTrainIds.png from cityscapesscripts) under data/cityscapes; another
# root: --cfg-options train_dataloader.dataset.data_root=PATH
#   val_dataloader.dataset.data_root=PATH test_dataloader.dataset.data_root=PATH
# Offline: --cfg-options model.pretrained=None (random init).
_base_ = 'mmseg::deeplabv3/deeplabv3_r101-d8_4xb2-40k_cityscapes-512x1024.py'
custom_imports = dict(imports=['mmlocal'], allow_failed_imports=False)

data_root = 'data/cityscapes/'
train_dataloader = dict(
    dataset=dict(data_root=data_root), worker_init_fn=dict(type='seed_worker'))
val_dataloader = dict(dataset=dict(data_root=data_root))
test_dataloader = dict(dataset=dict(data_root=data_root))

# exact resume and new augmentations every epoch (mmlocal RandomStateHook)
custom_hooks = [dict(type='RandomStateHook')]
