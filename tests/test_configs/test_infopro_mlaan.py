"""``resnet32_cifar10_infopro_mlaan_k16.py`` reproduces MLAAN's
``resnetInfoProbin.py`` (github.com/Wendy231015/MLAAN @ 70effbe).

The lambda table is the code's, derived here from its lines 329-332 and the
README's arguments, not from mmlocal: ratio = stage / (local_module_num - 2)
with the stage (1..3) of segment i's block and local_module_num = 15, so
lambda1 = 5 (1 - stage/13), lambda2 = 0.5 (1 - stage/13): 4.62/0.46,
4.23/0.42, 3.85/0.38 for the heads on layer1, layer2, layer3 blocks. The
code never freezes its EMA copies, so SGD trains them (one real step moves
every one)."""
import os.path as osp

import mmlocal  # noqa: F401
import pytest
import torch

from mmlocal import apis
from mmlocal.local import LocalLearner

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CONFIG = osp.join(ROOT, 'configs', 'resnet32_cifar10_infopro_mlaan_k16.py')

# (lambda1, lambda2) by backbone stage, from the authors' code (module docstring)
AUTHORS = {1: (4.62, 0.46), 2: (4.23, 0.42), 3: (3.85, 0.38)}


def _build():
    cfg = apis.load_config(CONFIG)
    cfg.train_dataloader.dataset.data_root = osp.join(ROOT, 'data', 'cifar10_mini')
    torch.manual_seed(0)
    model, wrapper = apis.build_model_and_optim_wrapper(cfg, 'cpu')
    return cfg, model, wrapper


@pytest.fixture(scope='module')
def trained():
    return _build()


def test_lambda_table_is_the_authors(trained):
    _, model, _ = trained
    plan = LocalLearner.of(model).plan
    seen = set()
    for h in plan.heads:
        stage = int(plan.boundaries[h.module].split('layer')[1][0])
        lam = (h.loss_weights['recon'], h.loss_weights['task'])
        assert tuple(round(v, 2) for v in lam) == AUTHORS[stage], (h.key, lam)
        assert lam == pytest.approx((5 * (1 - stage / 13), 0.5 * (1 - stage / 13)))
        seen.add((h.kind, stage))
    assert seen == {(k, s) for k in ('independent', 'cascade') for s in (1, 2, 3)}
    assert {h.module + 1 for h in plan.heads} == set(range(4, 16))  # m4..m15


def test_ema_branch_is_trained_as_the_code(trained):
    """One real step: every EMA copy (synced from its live block at the
    step's start) is moved by SGD, not only the last one by its EMA update
    (``mlaan.ema_branch='frozen'``: tests/test_local/test_mlaan.py)."""
    cfg, model, wrapper = trained
    heads = LocalLearner.of(model).leap_heads()
    assert len(heads) == 12
    assert all(p.requires_grad for h in heads for p in h.ema.parameters())
    live = [[p.detach().clone() for p in model.get_submodule(h.sources[0]).parameters()]
            for h in heads]
    model.train_step(apis.real_batch(cfg, 4, 0), wrapper)
    for h, ps in zip(heads, live):
        assert bool(h.synced)
        # an EMA update alone would leave r live + (1 - r) live = live
        moved = max((a - b).abs().max().item() for a, b in zip(h.ema.parameters(), ps))
        assert moved > 1e-4, h.sources[0]
