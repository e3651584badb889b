# ResNet-110 on SVHN, end-to-end backprop (the baseline of the
# resnet110_svhn_<method>*.py configs). Recipe of InfoPro/HPFF/MLAAN:
# batch 1024, SGD 0.8 Nesterov, 400 epochs, warm-up + cosine; random crop 32
# with padding 2, no flip. Data: class folders under data/svhn (layout in
# _base_/datasets/svhn.py); another root: --cfg-options
#   train_dataloader.dataset.data_root=PATH val_dataloader.dataset.data_root=PATH
#   test_dataloader.dataset.data_root=PATH
_base_ = [
    '_base_/models/resnet110_cifar.py',
    '_base_/datasets/svhn.py',
    '_base_/schedules/cifar_bs1024_cosine.py',
    '_base_/default_runtime.py',
]
custom_imports = dict(
    imports=['mmlocal', 'mmlocal.datasets'], allow_failed_imports=False)
