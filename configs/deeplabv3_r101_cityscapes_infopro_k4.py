"""DeepLabV3-R101 on Cityscapes, InfoPro K=4 (HPFF Table 4 row), split after
layer3[0], [9], [17] (HPFF's ImageNet end points; 'hpff-imagenet' preset).
Use split='memory' with memory_batch=dict(batch_size=2) for InfoPro's
memory-balanced variant (measured when the optim wrapper is built), or the
-balanced config, which lists those boundaries."""
_base_ = ['./deeplabv3_r101_cityscapes_e2e.py', './_base_/local/infopro_dense.py']

optim_wrapper = _base_.pop('local_learning')
optim_wrapper.local.update(num_modules=4, split='hpff-imagenet')
