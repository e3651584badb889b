"""ResNet-34 on ImageNet, DGL + MLAAN, K=17 (MLAAN Table II: 25.31 / 7.88
top-1 / top-5 error vs BP 25.38 / 7.90).

K=17 counts the stem: one module per block (the stem's max-pool + 16 blocks).
Multilaminar windows of k=3; leap-augmented modules on the cascade path with
the EMA of every module updated each iteration, as the authors' ImageNet code
(ALGORITHMS.md §6.3). Copied blocks: mmlocal's rule (first block of every
later stage, the middle and the last block of layer4): the authors' R34 table
is not reproducible from their repository. Heads: GAP + FC (their ImageNet
aux nets for 256/512 channels). Recipe (§7): SGD Nesterov, lr 0.05 per 128
images (0.1 at batch 256 here), cosine, 150 epochs, EMA r = 0.995.

Data: mmpretrain's ImageNet layout under data/imagenet (see resnet101_imagenet_e2e.py).
"""
_base_ = 'mmpretrain::resnet/resnet34_8xb32_in1k.py'
custom_imports = dict(imports=['mmlocal'], allow_failed_imports=False)

# exact resume and new augmentations every epoch (mmlocal RandomStateHook)
train_dataloader = dict(worker_init_fn=dict(type='seed_worker'))
custom_hooks = [dict(type='RandomStateHook')]

optim_wrapper = dict(
    type='LocalLearningOptimWrapper',
    constructor='LocalLearningOptimWrapperConstructor',
    optimizer=dict(lr=0.1, nesterov=True),
    local=dict(
        num_modules=17,
        method=dict(type='DGL', classifier=dict(type='ConvAuxClassifier', arch='0c1f')),
        hilo=dict(cascade=3, independent_weight=0.001, cascade_weight=0.999),
        mlaan=dict(momentum=0.995, ema='all', path='cascade'),
    ))
param_scheduler = dict(
    _delete_=True, type='CosineAnnealingLR', T_max=150, by_epoch=True, begin=0, end=150)
train_cfg = dict(max_epochs=150)
