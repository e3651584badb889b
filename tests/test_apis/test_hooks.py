"""A plain model's Runner loads a locally trained checkpoint quietly."""
import os.path as osp

import torch

from mmlocal import apis
from mmlocal.apis.hooks import DropLocalLearnerHook

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
E2E = osp.join(ROOT, 'configs', 'resnet32_cifar10_e2e.py')


def test_plain_runner_drops_old_layout_keys(local_checkpoints, tmp_path):
    cfg = apis.load_config(E2E, {'model.backbone.depth': 20})
    cfg.work_dir = str(tmp_path)
    runner = apis.build_runner(cfg)
    assert any(isinstance(h, DropLocalLearnerHook) for h in runner.hooks)
    for layout in ('old', 'new'):
        checkpoint = runner.load_checkpoint(local_checkpoints[layout])
        assert not apis.local_learner_keys(checkpoint['state_dict'])
        for key, value in runner.model.state_dict().items():
            assert torch.equal(value, local_checkpoints['plain'][key]), key
    log = open(osp.join(runner.log_dir, f'{runner.timestamp}.log')).read()
    n = local_checkpoints['num_learner_tensors']
    assert log.count(f'Ignored {n} local-learning keys') == 1  # the old layout only
    assert 'unexpected key' not in log
