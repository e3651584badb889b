"""``tools/dist_train.sh CONFIG 2`` trains a local-learning config on CPU
(gloo) end to end and resumes; every rank holds the same state after resume
and at the end; only rank 0 writes logs and checkpoints."""
import json
import os
import os.path as osp
import subprocess
import sys

import pytest

from mmlocal.testing import free_port

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CONFIG = osp.join(ROOT, 'configs', 'resnet32_cifar10_dgl_k8.py')
DATA = osp.join(ROOT, 'data', 'cifar10_mini')

# A hook that all-gathers a digest of every rank's model and optimizer state
# (rank 0 writes them to the work dir): after resume (before_train) and at
# the end of training.
CHECK_HOOK = '''
import json, os.path as osp
import torch
from mmengine.dist import all_gather_object, get_rank
from mmengine.hooks import Hook
from mmengine.registry import HOOKS


def _digest(tensors):
    # order-independent (optimizer state order may change on load), exact
    flat = torch.cat([t.detach().double().flatten() for t in tensors] or [torch.zeros(1)])
    return [float(flat.sum()), float((flat * flat).sum()), float(flat.abs().max()), flat.numel()]


@HOOKS.register_module()
class RankDigestHook(Hook):
    def _record(self, runner, stage):
        model = getattr(runner.model, 'module', runner.model)
        from mmlocal.local import LocalLearner
        learner = LocalLearner.of(model)
        parts = [model] + ([learner] if learner is not None else [])
        params = [p for part in parts for p in part.parameters()]
        buffers = [b for part in parts for b in part.buffers() if b.is_floating_point()]
        opt = runner.optim_wrapper.optimizer.state
        moments = [s['momentum_buffer'] for s in opt.values() if 'momentum_buffer' in s]
        mine = dict(params=_digest(params), buffers=_digest(buffers),
                    optimizer=_digest(moments), iter=runner.iter,
                    heads=0 if learner is None else len(learner.state_dict()))
        every = all_gather_object(mine)
        if get_rank() == 0:
            path = osp.join(runner.work_dir, 'rank_digests.json')
            old = json.load(open(path)) if osp.exists(path) else {}
            old[stage] = every
            json.dump(old, open(path, 'w'))

    def before_train(self, runner):
        self._record(runner, f'before_train@{runner.iter}')

    def after_train(self, runner):
        self._record(runner, f'after_train@{runner.iter}')
'''


def _dist_train(config: str, work_dir: str, epochs: int, hook_dir: str, *extra: str) -> str:
    options = [
        f'train_cfg.max_epochs={epochs}', 'train_cfg.val_interval=2',
        'default_hooks.checkpoint.interval=1', 'default_hooks.logger.interval=1',
        'train_dataloader.batch_size=8', 'val_dataloader.batch_size=8',
        'train_dataloader.num_workers=0', 'val_dataloader.num_workers=0',
        'train_dataloader.dataset.indices=32', 'val_dataloader.dataset.indices=16',
        f'train_dataloader.dataset.data_root={DATA}', f'val_dataloader.dataset.data_root={DATA}',
        f'test_dataloader.dataset.data_root={DATA}',
    ]
    env = dict(os.environ, PYTHON=sys.executable, PORT=str(free_port()),
               PYTHONPATH=os.pathsep.join([hook_dir, os.environ.get('PYTHONPATH', '')]),
               OMP_NUM_THREADS='1')
    cmd = ['bash', osp.join(ROOT, 'tools', 'dist_train.sh'), config, '2', '--work-dir', work_dir,
           *extra, '--cfg-options', *options]
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=240)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-6000:]
    return out


@pytest.mark.slow
@pytest.mark.dist
def test_dist_train_local_learning_and_resume(tmp_path):
    if not osp.isdir(DATA):
        pytest.skip(f'bundled CIFAR-10 subset missing under {DATA}')
    (tmp_path / 'rank_digest_hook.py').write_text(CHECK_HOOK)
    config = tmp_path / 'dgl_k8_digest.py'
    config.write_text(
        f'_base_ = {CONFIG!r}\n'
        "custom_imports = dict(imports=['mmlocal', 'mmlocal.datasets', 'rank_digest_hook'],\n"
        '                      allow_failed_imports=False)\n'
        "custom_hooks = [dict(type='RankDigestHook')]\n")
    work = str(tmp_path / 'work')
    # 32 images, 2 ranks x 8: 2 iterations per epoch
    _dist_train(str(config), work, 1, str(tmp_path))
    assert osp.exists(osp.join(work, 'epoch_1.pth'))
    out = _dist_train(str(config), work, 2, str(tmp_path), '--resume')
    assert 'resumed epoch: 1, iter: 2' in out
    assert osp.exists(osp.join(work, 'epoch_2.pth'))
    assert 'local.m7.loss_cls' in out  # local losses logged

    digests = json.load(open(osp.join(work, 'rank_digests.json')))
    assert set(digests) == {'before_train@0', 'after_train@2', 'before_train@2',
                            'after_train@4'}
    for stage, ranks in digests.items():  # BN running stats stay per rank (plain BN)
        assert len(ranks) == 2
        for key in ('params', 'optimizer', 'iter', 'heads'):
            assert ranks[0][key] == ranks[1][key], f'ranks differ in {key} at {stage}: {ranks}'
    assert digests['before_train@2'][0]['heads'] > 0
    # resume restored rank 0's saved state (buffers included) on every rank
    for key in ('params', 'buffers', 'optimizer'):
        saved = digests['after_train@2'][0][key]
        assert digests['before_train@2'][0][key] == digests['before_train@2'][1][key] == saved
    assert digests['before_train@0'][0]['params'] != digests['after_train@2'][0]['params']

    # only rank 0 writes: one log per run, no per-rank files
    logs = [f for _, _, fs in os.walk(work) for f in fs if f.endswith('.log')]
    assert len(logs) == 2, logs
    files = [f for _, _, fs in os.walk(work) for f in fs]
    assert not [f for f in files if 'rank' in f and f != 'rank_digests.json'], files
