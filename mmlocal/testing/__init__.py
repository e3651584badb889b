"""Real small models, real data and reference computations for tests."""
from .configs import CONFIGS, repo_config
from .dist import free_port
from .local import (assert_grad_close, build_local, features, grads_of, head_loss,
                    local_step_grads, module_param_names, task_loss)
from .memory import step_peak
from .models import (CIFAR_CLASSES, CIFAR_MINI, build_classifier, cifar_batch,
                     cifar_classifier_cfg)

__all__ = [
    'CONFIGS', 'repo_config', 'free_port', 'assert_grad_close', 'build_local', 'features',
    'grads_of', 'head_loss', 'local_step_grads', 'module_param_names', 'task_loss',
    'CIFAR_CLASSES', 'CIFAR_MINI', 'build_classifier', 'cifar_batch', 'cifar_classifier_cfg',
    'step_peak'
]
