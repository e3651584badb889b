"""``LocalLossHook`` under the real Runner: the local losses are read after
each ``train_step`` (no host sync inside it beyond E2E's), logged, and a
non-finite one stops training naming its module, before the logger and the
checkpoint see the iteration. ResNet-20 K=4 DGL on real CIFAR-10 images."""
import os.path as osp

import pytest
import torch
from mmengine.config import Config
from mmengine.hooks import Hook

import mmlocal  # noqa: F401
from mmlocal import apis
from mmlocal.engine.hooks import LocalLossHook

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CIFAR_MINI = osp.join(ROOT, 'data', 'cifar10_mini')
_runs = 0


@pytest.fixture(autouse=True)
def one_thread():
    if not osp.isdir(osp.join(CIFAR_MINI, 'train')):
        pytest.skip(f'bundled CIFAR-10 subset missing under {CIFAR_MINI}')
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


class CountSteps(Hook):
    """Counts host syncs between ``before_train_iter`` (run last) and
    ``after_train_iter`` (run first): the ``train_step`` alone."""

    def __init__(self) -> None:
        self.counter = None
        self.syncs = []
        self.logged = []  # local losses in the hub right after each train_step

    def enter(self) -> None:
        self.counter = apis.OpCounter()
        self.counter.__enter__()

    def leave(self) -> None:
        self.counter.__exit__(None, None, None)
        self.syncs.append(self.counter.syncs)


class Enter(Hook):
    priority = 'LOWEST'

    def __init__(self, count: CountSteps) -> None:
        self.count = count

    def before_train_iter(self, runner, batch_idx, data_batch=None) -> None:
        self.count.enter()


class Leave(Enter):
    priority = 'HIGHEST'

    def before_train_iter(self, runner, batch_idx, data_batch=None) -> None:
        pass

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None) -> None:
        self.count.leave()
        buf = runner.message_hub.log_scalars.get('train/local.m2.loss_cls')
        self.count.logged.append(0 if buf is None else len(buf.data[0]))


def make_cfg(tmp_path, name: str, local: bool = True) -> Config:
    global _runs
    _runs += 1
    cfg = Config.fromfile(osp.join(ROOT, 'configs', name))
    cfg.merge_from_dict({
        'model.backbone.depth': 20,
        'train_dataloader.dataset.data_root': CIFAR_MINI,
        'train_dataloader.dataset.indices': list(range(0, 2000, 125)),  # 16 images
        'train_dataloader.batch_size': 8,
        'train_dataloader.num_workers': 0,
        'train_dataloader.persistent_workers': False,
        'train_cfg.max_epochs': 1,
        'default_hooks.logger.interval': 1,
    })
    if local:
        cfg.optim_wrapper.local.num_modules = 4
    cfg.train_cfg.pop('val_interval', None)
    cfg.val_cfg = cfg.val_dataloader = cfg.val_evaluator = None
    cfg.work_dir = str(tmp_path / f'run{_runs}')
    cfg.experiment_name = f'local_loss_hook_{_runs}'
    cfg.randomness = dict(seed=0)
    return cfg


def train(cfg: Config, *hooks):
    count = CountSteps()
    runner = apis.build_runner(cfg)
    for h in (Enter(count), Leave(count)) + hooks:
        runner.register_hook(h)
    runner.train()
    return runner, count


def test_runner_reads_and_logs_after_the_step(tmp_path):
    _, e2e = train(make_cfg(tmp_path, 'resnet32_cifar10_e2e.py', local=False))
    runner, local = train(make_cfg(tmp_path, 'resnet32_cifar10_dgl_k16.py'))
    assert sum(isinstance(h, LocalLossHook) for h in runner.hooks) == 1
    assert local.syncs == e2e.syncs and len(local.syncs) == 2, (local.syncs, e2e.syncs)
    # unread when train_step returns (0, then 1 value), read by the hook after it
    assert local.logged == [0, 1]
    scalars = runner.message_hub.log_scalars
    for m in (1, 2, 3):
        assert len(scalars[f'train/local.m{m}.loss_cls'].data[0]) == 2  # both iterations
    log = open(osp.join(runner.log_dir, f'{runner.timestamp}.log')).read()
    assert 'local.m3.loss_cls: ' in log
    # after training, train_step reads its own losses again
    batch = next(iter(runner.train_dataloader))
    runner.model.train_step(batch, runner.optim_wrapper)
    assert len(scalars['train/local.m2.loss_cls'].data[0]) == 3


class PoisonHead(Hook):
    priority = 'LOWEST'

    def before_train(self, runner) -> None:
        with torch.no_grad():
            runner.optim_wrapper.learner.heads['m2'].classifier.fcs[-1].weight.fill_(
                float('nan'))


def test_nan_stops_the_runner_before_logging(tmp_path):
    cfg = make_cfg(tmp_path, 'resnet32_cifar10_dgl_k16.py')
    cfg.default_hooks.checkpoint = dict(type='CheckpointHook', interval=1, by_epoch=False)
    with pytest.raises(FloatingPointError,
                       match=r'local loss local.m2.loss_cls is nan at module m2 \(backbone'):
        train(cfg, PoisonHead())
    assert not any(p.name.endswith('.pth') for p in (tmp_path / f'run{_runs}').rglob('*'))
