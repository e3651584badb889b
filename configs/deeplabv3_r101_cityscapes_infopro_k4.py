"""DeepLabV3-R101 on Cityscapes, InfoPro K=4 (HPFF Table 4 row), split after
layer3[0], [9], [17] (HPFF's ImageNet end points; 'hpff-imagenet' preset).
Use split='memory' with memory_batch=dict(batch_size=2) for InfoPro's
memory-balanced variant (measured when the optim wrapper is built), or the
-balanced config, which lists those boundaries."""
_base_ = './deeplabv3_r101_cityscapes_e2e.py'

optim_wrapper = dict(
    type='LocalLearningOptimWrapper',
    constructor='LocalLearningOptimWrapperConstructor',
    local=dict(
        num_modules=4,
        split='hpff-imagenet',
        method=dict(type='InfoPro', recon_weights=(1.5, 1.5), task_weights=(1., 1.)),
    ))
