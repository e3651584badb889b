# SVHN (cropped digits, 32x32) as class folders of images. mmpretrain has no
# SVHN dataset class, so convert torchvision's ``train_32x32.mat`` /
# ``test_32x32.mat`` (or any copy) to
#   <data_root>/train/<digit>/*.png   (73,257 images; folders 0 ... 9)
#   <data_root>/test/<digit>/*.png    (26,032 images)
# where folder ``0`` holds the digit 0 (torchvision's label 0; the .mat files
# store it as 10). ``extra`` is not used by InfoPro/HPFF/MLAAN.
# Recipe (ALGORITHMS.md §7): random crop 32 with zero padding 2, no flip,
# normalise with mean = std = 127.5, batch 1024.
#
# Data root: ``--cfg-options data_root=...`` does NOT reach the datasets
# (mmengine evaluates it when the file is read); override the three keys:
#   --cfg-options train_dataloader.dataset.data_root=PATH \
#                 val_dataloader.dataset.data_root=PATH \
#                 test_dataloader.dataset.data_root=PATH
custom_imports = dict(
    imports=['mmlocal', 'mmlocal.datasets'], allow_failed_imports=False)

dataset_type = 'ClassFolderDataset'
data_root = 'data/svhn'
classes = ('0', '1', '2', '3', '4', '5', '6', '7', '8', '9')
data_preprocessor = dict(
    num_classes=10,
    mean=[127.5, 127.5, 127.5],
    std=[127.5, 127.5, 127.5],
    to_rgb=True)

train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='RandomCrop', crop_size=32, padding=2),
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
