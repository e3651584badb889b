# CIFAR-10 as class folders of images (the layout of cifar10_jpg.tar.gz):
#   <data_root>/train/<class>/*.jpg   (50,000 images)
#   <data_root>/test/<class>/*.jpg    (10,000 images)
# Extract the archive with
#   python tools/prepare_cifar10.py ../shared/data/cifar10_jpg.tar.gz data/cifar10
# ``data/cifar10_mini`` (bundled: 2,000 train + 500 test) has the same layout.
#
# ``ClassFolderDataset`` (mmlocal.datasets) is mmpretrain's CustomDataset with
# the labels fixed to the order of ``classes`` below (the standard CIFAR-10
# order) and a clear error when the data root is missing.
# Recipe of InfoPro/HPFF/MLAAN (ALGORITHMS.md §7): reflect-pad 4 + random
# crop 32 + h-flip, mean 125.3/123.0/113.9, std 63.0/62.1/66.7, batch 1024.
#
# Data root: mmengine evaluates ``data_root`` once, when the file is read, so
# ``--cfg-options data_root=...`` does NOT reach the datasets. Override the
# three dataset keys instead:
#   --cfg-options train_dataloader.dataset.data_root=PATH \
#                 val_dataloader.dataset.data_root=PATH \
#                 test_dataloader.dataset.data_root=PATH
custom_imports = dict(
    imports=['mmlocal', 'mmlocal.datasets'], allow_failed_imports=False)

dataset_type = 'ClassFolderDataset'
data_root = 'data/cifar10'
classes = ('airplane', 'automobile', 'bird', 'cat', 'deer', 'dog', 'frog',
           'horse', 'ship', 'truck')
data_preprocessor = dict(
    num_classes=10,
    mean=[125.3, 123.0, 113.9],
    std=[63.0, 62.1, 66.7],
    to_rgb=True)  # images are decoded as BGR; the statistics are RGB

train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='RandomCrop', crop_size=32, padding=4, padding_mode='reflect'),
    dict(type='RandomFlip', prob=0.5, direction='horizontal'),
    dict(type='PackInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='PackInputs'),
]

train_dataloader = dict(
    batch_size=1024,
    num_workers=4,
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        data_prefix='train',
        metainfo=dict(classes=classes),
        pipeline=train_pipeline),
    sampler=dict(type='DefaultSampler', shuffle=True),
    # new augmentations every epoch, the same after a resume (mmlocal)
    worker_init_fn=dict(type='seed_worker'),
)
val_dataloader = dict(
    batch_size=1024,
    num_workers=4,
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        data_prefix='test',
        metainfo=dict(classes=classes),
        pipeline=test_pipeline),
    sampler=dict(type='DefaultSampler', shuffle=False),
)
val_evaluator = dict(type='Accuracy', topk=(1, ))

test_dataloader = val_dataloader
test_evaluator = val_evaluator
