from .cifar_resnet import CifarBasicBlock, CifarResNet

__all__ = ['CifarBasicBlock', 'CifarResNet']
