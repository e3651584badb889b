"""ResNet-32 CIFAR-10, InfoPro (softmax), K=8, with InfoPro's own K=8 lambdas
(InfoPro Table 2, R32 K=8 InfoPro Softmax: 11.40 % test error).

InfoPro's loop (ALGORITHMS.md §2.1) over its K=8 split (§1.2, no stem
module): r = m / (K - 2), m = 0..6; ``comand.sh`` R32 K=8 values (§2.2):
recon 5 -> 0, task 0 -> 2 (published for its contrast runs; the softmax
values are not in the repository), psi 1c2f, InfoPro's decoder, 160 epochs.
HPFF/MLAAN's (5, 0.5) -> (0, 0) cannot be used at K=8: no stem segment
shifts the index, so the last local module would get lambda = (0, 0) and
never train (mmlocal refuses that plan).
"""
_base_ = ['./resnet32_cifar10_e2e.py', './_base_/local/infopro.py']

optim_wrapper = _base_.pop('local_learning')
optim_wrapper.local.update(num_modules=8)
optim_wrapper.local.method.update(recon_weights=(5., 0.), task_weights=(0., 2.))

param_scheduler = [
    dict(type='LinearLR', start_factor=0.01 / 0.8, end_factor=1.0, by_epoch=True,
         begin=0, end=11, convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', T_max=160, eta_min=0.0, by_epoch=True,
         begin=0, end=160, convert_to_iter_based=True),
]
train_cfg = dict(by_epoch=True, max_epochs=160, val_interval=1)
