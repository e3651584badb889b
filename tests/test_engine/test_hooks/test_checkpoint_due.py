"""``checkpoint_due`` agrees with mmengine's own ``CheckpointHook``: real
Runners (mmengine's toy model) train with several checkpoint settings, and
after every iteration or epoch the function's answer is compared with the
checkpoint files the CheckpointHook then writes."""
import copy
import os.path as osp

import pytest
from mmengine.hooks import Hook
from mmengine.testing import RunnerTestCase

from mmlocal.engine.hooks import checkpoint_due


class _Record(Hook):
    """Asks ``checkpoint_due`` before the CheckpointHook (lower priority) acts."""
    priority = 'HIGH'

    def __init__(self):
        self.due = []

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None):
        if checkpoint_due(runner):
            self.due.append(f'iter_{runner.iter + 1}.pth')

    def after_train_epoch(self, runner):
        if checkpoint_due(runner, by_epoch=True):
            self.due.append(f'epoch_{runner.epoch + 1}.pth')


class _Toy(RunnerTestCase):
    __test__ = False

    def runTest(self):  # pragma: no cover
        pass


@pytest.fixture
def toy():
    case = _Toy()
    case.setUp()
    yield case
    case.tearDown()


def _written(work_dir: str, names) -> list:
    return [n for n in names if osp.exists(osp.join(work_dir, n))]


@pytest.mark.parametrize('by_epoch, checkpoint', [
    (False, dict(interval=2)),
    (False, dict(interval=2, save_begin=3)),  # odd iterations: 3, 5, 7
    (False, dict(interval=3, save_last=False)),
    (False, dict(interval=4, save_begin=2, save_last=True)),
    (True, dict(interval=2)),
    (True, dict(interval=2, save_begin=1, save_last=False)),
    (True, dict(interval=3, save_last=True)),
])
def test_checkpoint_due_is_the_checkpoint_hooks_decision(toy, tmp_path, by_epoch, checkpoint):
    cfg = copy.deepcopy(toy.epoch_based_cfg if by_epoch else toy.iter_based_cfg)
    cfg.work_dir = str(tmp_path)
    cfg.experiment_name = f'due_{by_epoch}_{sorted(checkpoint.items())}'
    if by_epoch:
        cfg.train_cfg = dict(by_epoch=True, max_epochs=5, val_interval=100)
    else:
        cfg.train_cfg = dict(by_epoch=False, max_iters=7, val_interval=100)
    cfg.default_hooks.checkpoint = dict(type='CheckpointHook', by_epoch=by_epoch, **checkpoint)
    record = _Record()
    cfg.custom_hooks = []
    runner = toy.build_runner(cfg)
    runner.register_hook(record)
    runner.train()
    n = 5 if by_epoch else 7
    names = [f'{"epoch" if by_epoch else "iter"}_{i}.pth' for i in range(1, n + 1)]
    assert _written(str(tmp_path), names) == record.due
    assert record.due  # every setting here saves at least once
