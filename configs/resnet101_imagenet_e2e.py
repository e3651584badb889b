# ResNet-101 on ImageNet, end-to-end backprop: the baseline every
# resnet101_imagenet_<method>*.py local-learning config is a delta over.
#
# mmpretrain's own config (8 GPUs x 32 = batch 256, SGD lr 0.1, weight decay
# 1e-4, RandomResizedCrop 224 + flip; val: resize 256, centre crop 224) with the
# schedule of the InfoPro and HPFF ImageNet code (ALGORITHMS.md §7): Nesterov
# momentum, cosine learning rate per epoch, 90 epochs. HPFF trains at batch 128
# with lr 0.05 and InfoPro at 1024 with lr 0.4: the same lr per sample as here.
# Other batch sizes: tools/train.py --auto-scale-lr (base_batch_size 256).
# zero_init_residual=True (mmpretrain's ResNet). HPFF's own recipe (one GPU, batch 128,
# lr 0.05, zero_init_residual=False): resnet101_imagenet_infopro_hpff_k4_1xb128.py.
#
# Data: mmpretrain's ImageNet layout, data/imagenet/{train,val}/ and
# meta/{train,val}.txt ("<wnid>/<file> <label>" lines). Elsewhere:
#   --cfg-options train_dataloader.dataset.data_root=PATH \
#                 val_dataloader.dataset.data_root=PATH \
#                 test_dataloader.dataset.data_root=PATH
_base_ = 'mmpretrain::resnet/resnet101_8xb32_in1k.py'
custom_imports = dict(imports=['mmlocal'], allow_failed_imports=False)

# exact resume and new augmentations every epoch (mmlocal RandomStateHook)
train_dataloader = dict(worker_init_fn=dict(type='seed_worker'))
custom_hooks = [dict(type='RandomStateHook')]

optim_wrapper = dict(optimizer=dict(nesterov=True))
param_scheduler = dict(
    _delete_=True, type='CosineAnnealingLR', T_max=90, by_epoch=True,
    begin=0, end=90)
train_cfg = dict(max_epochs=90)
