"""ResNet-101 ImageNet, InfoPro K=4 (HPFF's baseline: 22.81 / 6.54 top-1 /
top-5 error).

HPFF's ImageNet split (ALGORITHMS.md §1.3, preset 'hpff-imagenet'): module 1
= stem + layer1 + layer2 + layer3[0], then layer3[1..9], layer3[10..17],
layer3[18..] + layer4. All heads sit on 1024-channel 1/16 maps: HPFF's psi
for 1024 channels (1x1 -> 256, 3x3 s2 -> 256, 3x3 s2 -> 512, 1x1 -> 2048,
GAP, FC) and a decoder with three x2 upsamplings (128, 64, 32, 16 channels)
back to the crop (§5.4). Local loss 5 BCE + 0.75 CE, hard-coded in their
code. For K=8: num_modules=8 (the same preset has it); split='memory' (with
memory_batch=dict(batch_size=32, input_size=(224, 224))) balances the
measured peak of a training step instead.

Recipe: mmpretrain's 8 x 32 (batch 256, SGD lr 0.1 Nesterov, weight decay 1e-4,
cosine per epoch, 90 epochs, ``zero_init_residual=True``; see
``resnet101_imagenet_e2e.py``), the authors' lr per sample. HPFF's own recipe
(batch 128 on one GPU, lr 0.05, ``zero_init_residual=False``):
``resnet101_imagenet_infopro_hpff_k4_1xb128.py``.
"""
_base_ = ['./resnet101_imagenet_e2e.py', './_base_/local/infopro_imagenet.py']

optim_wrapper = _base_.pop('local_learning')
