# STL-10 schedule of InfoPro, HPFF and MLAAN (ALGORITHMS.md §7): SGD lr 0.1
# (batch 128), momentum 0.9, Nesterov, weight decay 1e-4, 400 epochs
# (HPFF/MLAAN; InfoPro: 160), the same warm-up + cosine as
# cifar_bs1024_cosine.py (warm-up from an absolute 0.01, i.e. 0.1 * lr0).
optim_wrapper = dict(
    optimizer=dict(
        type='SGD', lr=0.1, momentum=0.9, nesterov=True, weight_decay=1e-4))

param_scheduler = [
    dict(
        type='LinearLR',
        start_factor=0.01 / 0.1,
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

auto_scale_lr = dict(base_batch_size=128)
