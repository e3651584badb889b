"""ResNet-110 STL-10, InfoPro (Contrast), K=16, as InfoPro's own code (InfoPro
Table 3, STL-10 R110 K=16 InfoPro Contrast: 26.27 % test error): InfoPro's
loop (ALGORITHMS.md §2.1) over its R110 K=16 split (§1.2), r = m / (K - 2),
the ``comand.sh`` values (§2.2) recon 20 -> 10, task 0.5 -> 0.1, SupCon,
160 epochs (§7)."""
_base_ = ['./resnet110_stl10_e2e.py', './_base_/local/infopro.py']

optim_wrapper = _base_.pop('local_learning')
optim_wrapper.local.update(num_modules=16)
optim_wrapper.local.method.update(
    recon_weights=(20., 10.), task_weights=(0.5, 0.1), task_loss='contrast')

# InfoPro trains 160 epochs (ALGORITHMS.md §7); warm-up as the base schedule
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01 / 0.1, end_factor=1.0, by_epoch=True,
         begin=0, end=11, convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', T_max=160, eta_min=0.0, by_epoch=True,
         begin=0, end=160, convert_to_iter_based=True),
]
train_cfg = dict(by_epoch=True, max_epochs=160, val_interval=1)
