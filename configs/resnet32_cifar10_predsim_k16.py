"""ResNet-32 CIFAR-10, PredSim (beta 0.99), K=16."""
_base_ = ['./resnet32_cifar10_e2e.py', './_base_/local/predsim.py']

optim_wrapper = _base_.pop('local_learning')
optim_wrapper.local.update(num_modules=16)
