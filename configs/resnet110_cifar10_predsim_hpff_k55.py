"""ResNet-110 CIFAR-10, PredSim + HPFF (HiLo k=2 + PFF n=2), K=55 (HPFF
memory table: 1.90 GB). No PredSim+HPFF code is public (ALGORITHMS.md §0):
HPFF's loop (§5.2, ``stem='merged'``, independent heads from segment 1 on,
0.001 / 0.999) with PredSim heads (beta 0.99, §4) and the paper's PFF."""
_base_ = ['./resnet110_cifar10_e2e.py', './_base_/local/predsim.py', './_base_/local/hilo_loop.py']

optim_wrapper = _base_.pop('local_learning')
optim_wrapper.local.update(
    _base_.pop('local_hilo'), num_modules=55, pff=dict(patches=2, variant='paper'))
