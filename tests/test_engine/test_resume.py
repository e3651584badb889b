"""Resume is exact: 1 epoch, then a resume to epoch 2, ends with every tensor
of 2 straight epochs, bit for bit: weights, BN statistics, local heads, MLAAN
EMA copies, optimizer state, and the random generators themselves.

Real Runner, the project's configs, real CIFAR-10 images (192 training
images, batch 64, seed 0, one thread, validation after every epoch), as
``tools/train.py`` runs them: ``resume=True`` and ``load_from`` the checkpoint.
Variants: data workers, an iteration loop (mmseg's), no seed, two gloo
ranks; the control (mmengine alone) is not exact; data workers draw new
augmentations every epoch.
"""
import glob
import os.path as osp
from typing import Any, Dict

import pytest
import torch
from mmengine.config import Config
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper
from mmengine.registry import HOOKS
from mmengine.runner import Runner

import mmlocal  # noqa: F401
from mmlocal.testing import free_port
from mmlocal.engine.hooks import (RandomStateHook, epoch_seed, get_random_state,
                                  set_random_state)

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CONFIGS = osp.join(ROOT, 'configs')
CIFAR_MINI = osp.join(ROOT, 'data', 'cifar10_mini')
E2E = 'resnet32_cifar10_e2e.py'
MLAAN = 'resnet32_cifar10_dgl_mlaan_k8.py'

SMALL = dict(n_train=96, batch=32)  # the variants: 3 iterations per epoch too
_runs = 0


@pytest.fixture(autouse=True)
def one_thread():
    if not osp.isdir(osp.join(CIFAR_MINI, 'train')):
        pytest.skip(f'bundled CIFAR-10 subset missing under {CIFAR_MINI}')
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def make_cfg(name: str, work_dir: str, max_epochs: int, num_workers: int = 0,
             resume_from: str = None, hook: bool = True, n_train: int = 192,
             batch: int = 64, seed_workers: bool = True, iters: int = 0,
             seed: int = 0, **extra) -> Config:
    """The config as ``tools/train.py CONFIG --cfg-options ...`` makes it."""
    global _runs
    _runs += 1
    cfg = Config.fromfile(osp.join(CONFIGS, name))
    spread = list(range(0, 2000, 10))[:n_train]  # all ten classes
    cfg.merge_from_dict({
        'train_dataloader.dataset.data_root': CIFAR_MINI,
        'train_dataloader.dataset.indices': spread,
        'train_dataloader.batch_size': batch,
        'train_dataloader.num_workers': num_workers,
        'train_dataloader.persistent_workers': False,
        'val_dataloader.dataset.data_root': CIFAR_MINI,
        'val_dataloader.dataset.indices': list(range(0, 500, 7))[:64],
        'val_dataloader.batch_size': 64,
        'val_dataloader.num_workers': 0,
        'test_dataloader.dataset.data_root': CIFAR_MINI,
        'train_cfg.max_epochs': max_epochs,
        'default_hooks.checkpoint.interval': 1,
        'default_hooks.logger.interval': 1,
        **extra,
    })
    cfg.randomness = dict(seed=seed)
    cfg.work_dir = work_dir
    cfg.experiment_name = f'resume_test_{_runs}'
    if not hook:
        cfg.custom_hooks = [h for h in cfg.get('custom_hooks', [])
                            if h['type'] != 'RandomStateHook']
    if not seed_workers:
        cfg.train_dataloader.pop('worker_init_fn')
    if iters:  # mmseg's kind of schedule: an iteration loop, checkpoints every 3
        cfg.train_cfg = dict(type='IterBasedTrainLoop', max_iters=iters, val_interval=3)
        cfg.param_scheduler = dict(type='ConstantLR', factor=1.0, by_epoch=False)
        cfg.default_hooks.checkpoint.update(by_epoch=False, interval=3)
        cfg.default_hooks.logger.log_metric_by_epoch = False
    if resume_from is not None:
        cfg.resume = True
        cfg.load_from = resume_from
    return cfg


def train(cfg: Config) -> Runner:
    runner = Runner.from_cfg(cfg)
    runner.train()
    return runner


def _flatten(prefix: str, obj: Any, out: Dict[str, Any]) -> None:
    if isinstance(obj, dict):
        for k, v in obj.items():
            _flatten(f'{prefix}.{k}', v, out)
    elif isinstance(obj, (list, tuple)):
        for i, v in enumerate(obj):
            _flatten(f'{prefix}.{i}', v, out)
    elif isinstance(obj, (torch.Tensor, int, float, bool)):
        out[prefix] = obj


def training_state(runner: Runner) -> Dict[str, Any]:
    """Every tensor a resume must restore: the model's, the local learner's
    (heads, EMA copies; wherever the checkpoint keeps them) and the optim
    wrapper's (momentum buffers, learning rates, loss scaler); and the random
    generators where the run left them (take it right after the run)."""
    model = runner.model.module if is_model_wrapper(runner.model) else runner.model
    out: Dict[str, Any] = {}
    _flatten('model', model.state_dict(), out)
    learner = getattr(runner.optim_wrapper, 'learner', None)
    if learner is not None:
        _flatten('learner', learner.state_dict(), out)
    _flatten('optim', runner.optim_wrapper.state_dict(), out)
    _flatten('rng', get_random_state(), out)
    return out


def flat(obj: Any) -> Dict[str, Any]:
    out: Dict[str, Any] = {}
    _flatten('', obj, out)
    return out


def differing(a: Dict[str, Any], b: Dict[str, Any]) -> list:
    assert a.keys() == b.keys()
    return [k for k in a if not (
        torch.equal(a[k], b[k]) if isinstance(a[k], torch.Tensor) else a[k] == b[k])]


def straight_and_resumed(tmp_path, name: str, num_workers: int = 0,
                         iter_based: bool = False, **size):
    """2 epochs (6 iterations) straight; 1 epoch (3), then a resume to 2."""
    def cfg(tag, epochs, **kwargs):
        iters = dict(iters=3 * epochs) if iter_based else {}
        return make_cfg(name, str(tmp_path / tag), epochs, num_workers, **iters,
                        **size, **kwargs)

    straight = train(cfg('straight', 2))
    straight_state = training_state(straight)  # now: it holds the generators
    train(cfg('first', 1))
    ckpt = str(tmp_path / 'first' / ('iter_3.pth' if iter_based else 'epoch_1.pth'))
    # written during validation; a resumed run deletes it when it saves its own best
    best = [torch.load(f, weights_only=False)['random_states']
            for f in glob.glob(str(tmp_path / 'first' / 'best_*.pth'))]
    resumed = train(cfg('resumed', 2, resume_from=ckpt))
    assert straight.iter == resumed.iter == 6
    return straight_state, training_state(resumed), ckpt, best


def assert_covers(state: Dict[str, Any], local: bool) -> None:
    """The comparison covers what it claims to."""
    keys = list(state)
    assert any(k.endswith('running_mean') for k in keys)
    assert any(k.endswith('num_batches_tracked') for k in keys)
    assert sum(k.endswith('momentum_buffer') for k in keys) > 30
    if local:
        assert sum(k.startswith('learner.') for k in keys) > 100
        assert any('.ema.' in k and k.startswith('learner.') for k in keys)


@pytest.mark.slow
def test_resume_exact_e2e(tmp_path):
    straight, resumed, ckpt, best = straight_and_resumed(tmp_path, E2E)
    assert_covers(straight, local=False)
    assert differing(straight, resumed) == []
    saved = torch.load(ckpt, weights_only=False)['random_states']
    assert len(saved['states']) == 1 and saved['sampler_seed'] == 0
    # mmengine writes the best checkpoint, and epoch_1.pth again, during
    # validation: both hold the states from before it
    assert len(best) == 1 and differing(flat(saved), flat(best[0])) == []

    # the control: the same resume without the hook (mmengine alone) draws
    # other crops and flips, and the weights part
    plain = train(make_cfg(E2E, str(tmp_path / 'plain'), 2, resume_from=ckpt, hook=False))
    assert len(differing(straight, training_state(plain))) > 100


@pytest.mark.slow
def test_resume_exact_dgl_mlaan(tmp_path):
    straight, resumed, _, _ = straight_and_resumed(tmp_path, MLAAN)
    assert_covers(straight, local=True)
    assert differing(straight, resumed) == []


@pytest.mark.slow
def test_resume_exact_with_data_workers(tmp_path):
    straight, resumed, _, _ = straight_and_resumed(tmp_path, E2E, num_workers=2, **SMALL)
    assert differing(straight, resumed) == []


@pytest.mark.slow
@pytest.mark.parametrize('num_workers', [0, 2])
def test_resume_exact_iteration_loop(tmp_path, num_workers):
    """mmseg's schedule: an iteration loop that replays the trained batches
    on resume (here across the end of the data, 3 batches per pass)."""
    straight, resumed, _, _ = straight_and_resumed(tmp_path, E2E, num_workers, iter_based=True,
                                                **SMALL)
    assert differing(straight, resumed) == []


@pytest.mark.slow
def test_resume_exact_without_a_seed(tmp_path):
    """randomness.seed=None (mmpretrain's default): the resumed run starts
    with a new random seed; mmengine takes the checkpoint's for the runner
    but its sampler keeps the new one, the hook gives it back the saved one."""
    train(make_cfg(E2E, str(tmp_path / 'first'), 1, seed=None, **SMALL))
    ckpt = str(tmp_path / 'first' / 'epoch_1.pth')
    seed = torch.load(ckpt, weights_only=False)['meta']['seed']
    straight = training_state(
        train(make_cfg(E2E, str(tmp_path / 'straight'), 2, seed=seed, **SMALL)))
    resumed = train(make_cfg(E2E, str(tmp_path / 'resumed'), 2, seed=None,
                             resume_from=ckpt, **SMALL))
    assert resumed.train_dataloader.sampler.seed == seed
    assert differing(straight, training_state(resumed)) == []


# ------------------------------------------------------ worker seeding

class _RecordInputs(Hook):
    """Keeps every training batch's (augmented) images."""

    def __init__(self):
        self.batches = []

    def before_train_iter(self, runner, batch_idx, data_batch=None):
        self.batches.append(torch.stack(list(data_batch['inputs'])).clone())


def augmented_epochs(tmp_path, tag: str, **kwargs) -> list:
    """The images of two epochs, not shuffled: they differ only by their
    random crops and flips."""
    cfg = make_cfg(E2E, str(tmp_path / tag), 2, n_train=32, batch=8,
                   **{'train_dataloader.sampler.shuffle': False,
                      'val_cfg': None, 'val_dataloader': None,
                      'val_evaluator': None}, **kwargs)
    recorder = _RecordInputs()
    runner = Runner.from_cfg(cfg)
    runner.register_hook(recorder)
    runner.train()
    return recorder.batches


@pytest.mark.slow
def test_workers_draw_new_augmentations_every_epoch(tmp_path):
    ours = augmented_epochs(tmp_path, 'ours', num_workers=2)
    assert len(ours) == 8
    assert all(not torch.equal(a, b) for a, b in zip(ours[:4], ours[4:]))

    # mmengine's own worker seeds (no worker_init_fn, no hook): every epoch
    # replays the first one's crops and flips
    plain = augmented_epochs(tmp_path, 'mmengine', num_workers=2, hook=False,
                             seed_workers=False)
    assert all(torch.equal(a, b) for a, b in zip(plain[:4], plain[4:]))

    # the hook alone replaces mmengine's fixed seeds
    hook_only = augmented_epochs(tmp_path, 'hook', num_workers=2, seed_workers=False)
    assert all(not torch.equal(a, b) for a, b in zip(hook_only[:4], hook_only[4:]))


def test_random_state_round_trip():
    """What is drawn after a restore is what was drawn after the save, in
    python, numpy and torch; the saved form survives a weights-only load."""
    import io
    import random

    import numpy as np
    torch.manual_seed(3)
    np.random.seed(3)
    random.seed(3)
    np.random.randn()  # a cached Gaussian in numpy's state
    state = get_random_state()

    def draw():
        return (random.random(), np.random.randn(3).tolist(), torch.rand(3).tolist())

    first = draw()
    buffer = io.BytesIO()
    torch.save(state, buffer)
    buffer.seek(0)
    set_random_state(torch.load(buffer, weights_only=True))
    assert draw() == first
    assert draw() != first


def test_epoch_seed_varies_with_seed_epoch_rank():
    seeds = {epoch_seed(s, e, r) for s in (0, 1) for e in range(3) for r in range(2)}
    assert len(seeds) == 12
    assert epoch_seed(0, 1, 0) == epoch_seed(0, 1, 0)
    assert all(0 <= s < 2**63 for s in seeds)


def test_hook_is_registered_and_in_the_configs():
    assert HOOKS.get('RandomStateHook') is RandomStateHook
    for name in (E2E, MLAAN, 'resnet110_svhn_e2e.py', 'vit-b16_cifar10_dgl_k12.py',
                 'deeplabv3_r101_cityscapes_infopro_k4.py',
                 'resnet34_imagenet_dgl_mlaan_k17.py'):
        cfg = Config.fromfile(osp.join(CONFIGS, name))
        assert {'type': 'RandomStateHook'} in cfg.custom_hooks, name
        assert cfg.train_dataloader.worker_init_fn == dict(type='seed_worker'), name


# ---------------------------------------------------------- distributed


def _dist_train(work_dir: str, epochs: int, *args) -> None:
    import os
    import subprocess
    import sys
    # diff_rank_seed: each rank its own random stream (else both draw alike)
    opts = ['randomness.seed=0', 'randomness.diff_rank_seed=True',
            f'train_cfg.max_epochs={epochs}',
            'default_hooks.checkpoint.interval=1', 'default_hooks.logger.interval=1']
    for split, n in (('train', 96), ('val', 32), ('test', 32)):
        opts += [f'{split}_dataloader.dataset.data_root={CIFAR_MINI}',
                 f'{split}_dataloader.dataset.indices={n}',
                 f'{split}_dataloader.batch_size=16',
                 f'{split}_dataloader.num_workers=0']
    env = dict(os.environ, PYTHON=sys.executable, PORT=str(free_port()),
               OMP_NUM_THREADS='1', PYTHONPATH=ROOT)
    out = subprocess.run(
        ['bash', osp.join(ROOT, 'tools', 'dist_train.sh'), osp.join(CONFIGS, MLAAN), '2',
         '--work-dir', work_dir, *args, '--cfg-options', *opts],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-5000:]


def _checkpoint_tensors(path: str) -> Dict[str, Any]:
    checkpoint = torch.load(path, map_location='cpu', weights_only=False)
    out: Dict[str, Any] = {}
    for key, value in checkpoint.items():
        if key not in ('meta', 'message_hub'):  # times, paths, dates
            _flatten(key, value, out)
    return out


@pytest.mark.slow
@pytest.mark.dist
def test_resume_exact_two_ranks(tmp_path):
    """Two gloo processes, DGL + MLAAN: every rank's states are saved (rank 0
    writes the checkpoint) and each rank gets its own back; the weights,
    which average both ranks' gradients, prove rank 1's augmentations too."""
    straight, first = str(tmp_path / 'straight'), str(tmp_path / 'first')
    _dist_train(straight, 2)
    _dist_train(first, 1)
    _dist_train(first, 2, '--resume')  # the latest checkpoint: epoch_1.pth
    saved = torch.load(osp.join(first, 'epoch_1.pth'), weights_only=False)
    rank0, rank1 = saved['random_states']['states']
    assert not torch.equal(rank0['numpy']['key'], rank1['numpy']['key'])
    a = _checkpoint_tensors(osp.join(straight, 'epoch_2.pth'))
    b = _checkpoint_tensors(osp.join(first, 'epoch_2.pth'))
    assert sum(k.startswith('optimizer.') for k in a) > 100
    assert differing(a, b) == []
