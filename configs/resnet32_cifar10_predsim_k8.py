"""ResNet-32 CIFAR-10, PredSim (beta 0.99), K=8: PredSim as Nøkland &
Eidnes' code defines it (``anokland/local-loss`` @ 7b3b40b ``train.py``,
ALGORITHMS.md §4; ``_base_/local/predsim.py``), one head per local module of
the K=8 split (§1.2) with the recipe of the E2E config. No paper table
reports this setting (HPFF gives no PredSim hyper-parameters, §4): a
baseline for ``resnet110_cifar10_predsim_hpff_k55.py``, not a reproduction."""
_base_ = ['./resnet32_cifar10_e2e.py', './_base_/local/predsim.py']

optim_wrapper = _base_.pop('local_learning')
optim_wrapper.local.update(num_modules=8)
