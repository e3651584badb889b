# CIFAR-10 / SVHN schedule of InfoPro, HPFF and MLAAN (ALGORITHMS.md §7):
# SGD lr 0.8 (batch 1024), momentum 0.9, Nesterov, weight decay 1e-4,
# 400 epochs (HPFF/MLAAN; InfoPro: 160), cosine learning rate with a 10-epoch
# linear warm-up.
#
# Their ``adjust_learning_rate`` (``--cos_lr``) sets, for epoch e = 1..E,
#   lr(e) = 0.5 * lr0 * (1 + cos(pi * e / E)), blended for e <= 10 as
#   lr(e) * (e - 1) / 10 + 0.01 * (11 - e) / 10,
# i.e. it starts at an absolute 0.01 and joins the cosine of the *whole* run
# at epoch 11. Two overlapping mmengine schedulers reproduce it: their
# factors multiply, so LinearLR (0.01 / lr0 -> 1 at epoch 10, 0-based) times
# CosineAnnealingLR over all E epochs equal the blend up to the code's
# one-epoch offset (its epoch counter starts at 1): < 0.5% of lr0 apart at
# every epoch. Both step per iteration (convert_to_iter_based), not per epoch.
#
# Shorter runs: override train_cfg.max_epochs, param_scheduler[1].T_max and
# param_scheduler[1].end together. Other batch sizes: ``--auto-scale-lr``
# scales lr linearly from base_batch_size (the warm-up start then follows).
optim_wrapper = dict(
    optimizer=dict(
        type='SGD', lr=0.8, momentum=0.9, nesterov=True, weight_decay=1e-4))

param_scheduler = [
    dict(
        type='LinearLR',
        start_factor=0.01 / 0.8,
        end_factor=1.0,
        by_epoch=True,
        begin=0,
        end=11,  # mmengine reaches end_factor at step end - 1
        convert_to_iter_based=True),
    dict(
        type='CosineAnnealingLR',
        T_max=400,
        eta_min=0.0,
        by_epoch=True,
        begin=0,
        end=400,
        convert_to_iter_based=True),
]

train_cfg = dict(by_epoch=True, max_epochs=400, val_interval=1)
val_cfg = dict()
test_cfg = dict()

auto_scale_lr = dict(base_batch_size=1024)
