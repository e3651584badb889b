"""ResNet-101 ImageNet, InfoPro + HPFF K=4, trained with **HPFF's own recipe**
(HPFF Table 2, R101 InfoPro+HPFF: 21.14 / 5.49 top-1 / top-5 error).

The local learning of ``resnet101_imagenet_infopro_hpff_k4.py`` (HPFF's
ImageNet code, ALGORITHMS.md §5.4), trained as HPFF's README runs
``Exp on Imagenet/imagenet_DDP.py`` (github.com/Zeudfish/HPFF @ 343b8e1):

* one GPU, batch 128 (README ``--batch-size 128``; line 98 forces
  ``multiprocessing_distributed = False``);
* SGD lr 0.05 (README ``--lr 0.05``), momentum 0.9, weight decay 1e-4,
  Nesterov (lines 191-194);
* lr = 0.5 lr0 (1 + cos(pi epoch / 90)) set per epoch, no warm-up (line 461),
  90 epochs (README ``--epochs 90``);
* ``zero_init_residual=False`` (the default of their ``ResNet``,
  ``networks/resnetInfoPro_HPFF.py`` line 117; mmpretrain's ResNet zeroes
  the last BN of each block);
* RandomResizedCrop 224 + flip, val resize 256 + centre crop 224 (lines
  234-262), mmpretrain's pipeline as in the base config.

The other ImageNet configs use mmpretrain's 8 x 32 recipe at lr 0.1 (the
same lr per sample) with ``zero_init_residual=True``. ``--auto-scale-lr``
scales from this recipe's batch 128.
"""
_base_ = './resnet101_imagenet_infopro_hpff_k4.py'

model = dict(backbone=dict(zero_init_residual=False))
train_dataloader = dict(batch_size=128)
optim_wrapper = dict(optimizer=dict(lr=0.05, momentum=0.9, weight_decay=1e-4, nesterov=True))
auto_scale_lr = dict(base_batch_size=128)
