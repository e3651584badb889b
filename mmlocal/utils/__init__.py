from .compat import allow_checkpoint_globals, patch_torchvision

__all__ = ['allow_checkpoint_globals', 'patch_torchvision']
