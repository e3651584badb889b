"""ResNet-32 CIFAR-10, InfoPro (Contrast), K=16, as InfoPro's own code
(InfoPro Table 2, R32 K=16 InfoPro Contrast: 12.75 % test error).

InfoPro's CIFAR loop (ALGORITHMS.md §2.1): local modules m = 0..14, the stem
alone the first of them (split [0,0], §1.2); lambda = a (1 - r) + b r with
r = m / (K - 2); ``comand.sh`` values for R32 K=16 (§2.2): recon (5 -> 0.2),
task (0.05 -> 0.5), SupCon on a 128-d psi output (1c2f), InfoPro's decoder.
160 epochs, InfoPro's length (§7); the rest of the recipe as HPFF/MLAAN's.
"""
_base_ = ['./resnet32_cifar10_e2e.py', './_base_/local/infopro.py']

optim_wrapper = _base_.pop('local_learning')
optim_wrapper.local.update(num_modules=16)
optim_wrapper.local.method.update(
    recon_weights=(5., 0.2), task_weights=(0.05, 0.5), task_loss='contrast')

# InfoPro trains 160 epochs (ALGORITHMS.md §7); warm-up as the base schedule
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01 / 0.8, end_factor=1.0, by_epoch=True,
         begin=0, end=11, convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', T_max=160, eta_min=0.0, by_epoch=True,
         begin=0, end=160, convert_to_iter_based=True),
]
train_cfg = dict(by_epoch=True, max_epochs=160, val_interval=1)
