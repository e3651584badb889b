"""ResNet-34 on ImageNet, DGL + MLAAN, K=17 (MLAAN Table II: 25.31 / 7.88
top-1 / top-5 error vs BP 25.38 / 7.90).

MLAAN's ImageNet code (``ImageNet/networks/resnet34.py``, ALGORITHMS.md
§6.3-6.5): K=17 counts the stem (the max-pool) and S = 16 segments of one
block each; the stem is in no segment (``stem='merged'``). From segment 2 on:
an independent head (weight 0.001) and a cascade head over 3 segments
(0.999) with leap copies of later blocks on the cascade path, the copies of
§6.5's R34 S=16 table (e.g. layer1: [2,0],[2,1],[3,0],[4,0],[4,2]) and an EMA
copy of the first one updated for every module each iteration (r = 0.995).
Heads: ``auxnet34`` (64/128 channels: two 1x1 convs C -> 2C -> C with BN and
ReLU, then GAP -> FC; 256/512: GAP -> FC). The task loss: 0.001 CE(x) +
0.999 CE(y), i.e. weight 1 on the last module and 0.999 on the two below.
Recipe (§7): SGD Nesterov, lr 0.05 per 128 images (0.1 at batch 256 here, mmpretrain's
8 x 32), cosine, 150 epochs; ``zero_init_residual=True`` (mmpretrain's; MLAAN's
``ImageNet/networks/resnet34.py`` line 125 defaults to False). Data: mmpretrain's ImageNet layout under data/imagenet
(see resnet101_imagenet_e2e.py).
"""
_base_ = [
    'mmpretrain::resnet/resnet34_8xb32_in1k.py',
    './_base_/local/dgl.py',
    './_base_/local/hilo_loop.py',
]
custom_imports = dict(imports=['mmlocal'], allow_failed_imports=False)

# exact resume and new augmentations every epoch (mmlocal RandomStateHook)
train_dataloader = dict(worker_init_fn=dict(type='seed_worker'))
custom_hooks = [dict(type='RandomStateHook')]

optim_wrapper = _base_.pop('local_learning')
optim_wrapper.update(optimizer=dict(lr=0.1, nesterov=True))
optim_wrapper.local.update(
    _base_.pop('local_hilo'), num_modules=17,
    mlaan=dict(momentum=0.995, ema='all', path='cascade', table='mlaan'))
optim_wrapper.local.method.classifier = dict(type='AuxNet34Classifier')
optim_wrapper.local.hilo.cascade = 3
param_scheduler = dict(
    _delete_=True, type='CosineAnnealingLR', T_max=150, by_epoch=True, begin=0, end=150)
train_cfg = dict(max_epochs=150)
