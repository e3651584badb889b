# ResNet-110 (the CIFAR architecture, on 96x96 inputs; global pooling makes
# it size-agnostic) on STL-10, end-to-end backprop (the baseline of the
# resnet110_stl10_<method>*.py configs). Recipe of InfoPro/HPFF/MLAAN:
# batch 128, SGD 0.1 Nesterov, 400 epochs, warm-up + cosine. Data: class
# folders under data/stl10 (layout in _base_/datasets/stl10.py); another
# root: --cfg-options train_dataloader.dataset.data_root=PATH
#   val_dataloader.dataset.data_root=PATH test_dataloader.dataset.data_root=PATH
_base_ = [
    '_base_/models/resnet110_cifar.py',
    '_base_/datasets/stl10.py',
    '_base_/schedules/stl10_bs128_cosine.py',
    '_base_/default_runtime.py',
]
custom_imports = dict(
    imports=['mmlocal', 'mmlocal.datasets'], allow_failed_imports=False)
