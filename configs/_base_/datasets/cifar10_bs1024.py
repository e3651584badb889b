# CIFAR-10 in mmpretrain's own format (the python pickles,
# ``data/cifar10/cifar-10-batches-py``; mmpretrain downloads them when
# missing and the machine is online). Recipe of InfoPro/HPFF/MLAAN
# (ALGORITHMS.md §7): reflect-pad 4 + random crop 32 + h-flip, per-channel
# mean 125.3/123.0/113.9 and std 63.0/62.1/66.7 (of 0..255), batch 1024.
#
# Data root: mmengine evaluates ``data_root`` once, when the file is read, so
# ``--cfg-options data_root=...`` does NOT reach the datasets. Override the
# three dataset keys instead:
#   --cfg-options train_dataloader.dataset.data_root=PATH \
#                 val_dataloader.dataset.data_root=PATH \
#                 test_dataloader.dataset.data_root=PATH
dataset_type = 'CIFAR10'
data_root = 'data/cifar10'
data_preprocessor = dict(
    num_classes=10,
    mean=[125.3, 123.0, 113.9],
    std=[63.0, 62.1, 66.7],
    to_rgb=False)  # the pickled arrays are already RGB

train_pipeline = [
    dict(type='RandomCrop', crop_size=32, padding=4, padding_mode='reflect'),
    dict(type='RandomFlip', prob=0.5, direction='horizontal'),
    dict(type='PackInputs'),
]
test_pipeline = [dict(type='PackInputs')]

train_dataloader = dict(
    batch_size=1024,
    num_workers=4,
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        split='train',
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
        split='test',
        pipeline=test_pipeline),
    sampler=dict(type='DefaultSampler', shuffle=False),
)
val_evaluator = dict(type='Accuracy', topk=(1, ))

test_dataloader = val_dataloader
test_evaluator = val_evaluator
