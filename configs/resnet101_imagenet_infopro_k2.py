"""ResNet-101 ImageNet, InfoPro K=2 (InfoPro Table 4, InfoPro* K=2: 21.85 /
5.89 top-1 / top-5 error; 12.06 GB per GPU vs 19.71 GB E2E at batch 1024).

The authors' memory-balanced split (ALGORITHMS.md §1.3): module 1 = stem +
layer1 + layer2[0] (layer2[5] for ResNet-152, layer2[2] for ResNeXt-101),
its heads on the 512-channel 1/8 map: InfoPro's ImageNet psi and decoder w
(§2.5, picked from the inferred width). Local loss 5 BCE + 0.75 CE (their
README; 1.0 CE for ResNet-152). Module 2 = the rest, GAP and FC, plain CE.

Recipe: mmpretrain's 8 x 32 (batch 256, SGD lr 0.1 Nesterov, weight decay 1e-4,
cosine per epoch, 90 epochs, ``zero_init_residual=True``; see
``resnet101_imagenet_e2e.py``), the authors' lr per sample. HPFF's own recipe
(batch 128 on one GPU, lr 0.05, ``zero_init_residual=False``):
``resnet101_imagenet_infopro_hpff_k4_1xb128.py``.
"""
_base_ = ['./resnet101_imagenet_e2e.py', './_base_/local/infopro.py']

optim_wrapper = _base_.pop('local_learning')
optim_wrapper.local.update(boundaries=['backbone.layer2.0'])
optim_wrapper.local.method.update(recon_weights=(5., 5.), task_weights=(0.75, 0.75))
