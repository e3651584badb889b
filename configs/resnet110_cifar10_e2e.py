# ResNet-110 on CIFAR-10, end-to-end backprop: the baseline every local
# learning config (resnet110_cifar10_<method>*.py) is a delta over.
# Recipe of InfoPro/HPFF/MLAAN: batch 1024, SGD 0.8 Nesterov, 400 epochs,
# warm-up + cosine. Data: class folders of JPEGs under data/cifar10
# (python tools/prepare_cifar10.py ../shared/data/cifar10_jpg.tar.gz data/cifar10);
# another root: --cfg-options train_dataloader.dataset.data_root=PATH
#   val_dataloader.dataset.data_root=PATH test_dataloader.dataset.data_root=PATH
_base_ = [
    '_base_/models/resnet110_cifar.py',
    '_base_/datasets/cifar10_folder.py',
    '_base_/schedules/cifar_bs1024_cosine.py',
    '_base_/default_runtime.py',
]
custom_imports = dict(
    imports=['mmlocal', 'mmlocal.datasets'], allow_failed_imports=False)
