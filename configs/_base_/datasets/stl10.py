# STL-10 (96x96, the 5,000 labelled train / 8,000 test images) as class
# folders. mmpretrain has no STL-10 dataset class, so convert the binary
# release (``stl10_binary/{train,test}_X.bin``) or torchvision's copy to
#   <data_root>/train/<class>/*.png
#   <data_root>/test/<class>/*.png
# with the class folders named as ``classes`` below (label order of the
# release's class_names.txt). The unlabelled split is not used.
# Recipe (ALGORITHMS.md §7): random crop 96 with zero padding 4 + h-flip,
# normalise with mean = std = 127.5, batch 128.
#
# Data root: ``--cfg-options data_root=...`` does NOT reach the datasets
# (mmengine evaluates it when the file is read); override the three keys:
#   --cfg-options train_dataloader.dataset.data_root=PATH \
#                 val_dataloader.dataset.data_root=PATH \
#                 test_dataloader.dataset.data_root=PATH
custom_imports = dict(
    imports=['mmlocal', 'mmlocal.datasets'], allow_failed_imports=False)

dataset_type = 'ClassFolderDataset'
data_root = 'data/stl10'
classes = ('airplane', 'bird', 'car', 'cat', 'deer', 'dog', 'horse',
           'monkey', 'ship', 'truck')
data_preprocessor = dict(
    num_classes=10,
    mean=[127.5, 127.5, 127.5],
    std=[127.5, 127.5, 127.5],
    to_rgb=True)

train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='RandomCrop', crop_size=96, padding=4),
    dict(type='RandomFlip', prob=0.5, direction='horizontal'),
    dict(type='PackInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='PackInputs'),
]

train_dataloader = dict(
    batch_size=128,
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
    batch_size=128,
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
