"""Every local-learning ResNet config for CIFAR-10, SVHN and STL-10 builds its
heads for its own backbone and takes a real training step in which each of its
K-1 local modules reports a finite local loss (modules without a head of
their own are reached by a cascade) (real CIFAR-10 images where the
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
from mmlocal.local import LocalLearner

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

    plan = LocalLearner.of(model).plan
    num_modules = cfg.optim_wrapper.local.num_modules
    # every module with a head logs its loss; the others (the stem and the
    # first segments in the HPFF/MLAAN code's loops) learn through a cascade
    expected = {h.module + 1 for h in plan.heads}
    reached = {m + 1 for h in plan.heads for m in range(h.reach, h.module + 1)}
    assert reached == set(range(1, num_modules)), sorted(reached)
    local = {k: v.current() for k, v in hub.log_scalars.items()
             if k.startswith('train/local.')}
    modules = {int(re.match(r'train/local\.m(\d+)\.', k).group(1)) for k in local}
    assert modules == expected, sorted(modules)
    assert all(math.isfinite(v) for v in local.values()), local
