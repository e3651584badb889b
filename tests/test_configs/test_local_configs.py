"""Every local-learning ResNet config for CIFAR-10, SVHN and STL-10 builds its
heads for its own backbone and takes a real training step in which each of its
K-1 local modules reports a finite local loss (module 1 through the cascade
where the config says so) (real CIFAR-10 images where the
repository bundles them; random images of the configured size otherwise)."""
import glob
import math
import os.path as osp
import re

import mmlocal  # noqa: F401
import pytest
import torch
from mmengine.logging import MessageHub

from mmlocal import apis

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CIFAR_MINI = osp.join(ROOT, 'data', 'cifar10_mini')
CONFIGS = sorted(
    osp.basename(p) for p in glob.glob(osp.join(ROOT, 'configs', 'resnet*_*.py'))
    if re.match(r'resnet(32|110)_(cifar10|svhn|stl10)_', osp.basename(p))
    and '_e2e' not in p)


def test_all_local_configs_are_covered():
    assert len(CONFIGS) >= 24  # the list, HPFF, MLAAN, ablations
    assert 'resnet110_cifar10_dgl_k55.py' in CONFIGS
    assert 'resnet110_svhn_infopro_k16.py' in CONFIGS


@pytest.mark.parametrize('name', CONFIGS)
def test_local_config_trains_a_step(name):
    cfg = apis.load_config(osp.join(ROOT, 'configs', name))
    torch.manual_seed(0)
    model, optim_wrapper = apis.build_model_and_optim_wrapper(cfg, 'cpu')
    if '_cifar10_' in name:
        cfg.train_dataloader.dataset.data_root = CIFAR_MINI
        batch = apis.real_batch(cfg, 4, 0)
    else:  # no SVHN / STL-10 images in the repository
        batch = apis.synthetic_batch(cfg, 4, None, 0)
    hub = MessageHub.get_instance(f'local_configs_{name}')
    hub.log_scalars.clear()
    log_vars = model.train_step(batch, optim_wrapper)
    assert math.isfinite(float(log_vars['loss']))

    num_modules = cfg.optim_wrapper.local.num_modules
    expected = set(range(1, num_modules))
    hilo = cfg.optim_wrapper.local.get('hilo') or {}
    if hilo and not (hilo.get('independent', True)
                     and hilo.get('first_independent', True)):
        expected.discard(1)  # module 1 learns through the cascade head at m2
    local = {k: v.current() for k, v in hub.log_scalars.items()
             if k.startswith('train/local.')}
    modules = {int(re.match(r'train/local\.m(\d+)\.', k).group(1)) for k in local}
    assert modules == expected, sorted(modules)
    assert all(math.isfinite(v) for v in local.values()), local
