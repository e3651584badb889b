"""CPU distributed launches: the config changes, and a real gloo group."""
import pytest
import torch
from mmengine.config import Config
from mmengine.dist import get_world_size, is_distributed

from mmlocal import apis

pytestmark = pytest.mark.skipif(torch.cuda.is_available(), reason='CPU-only behaviour')


def test_cpu_distributed_config():
    cfg = Config(dict(model=dict(
        backbone=dict(norm_cfg=dict(type='SyncBN', requires_grad=True)),
        decode_head=[dict(norm_cfg=dict(type='MMSyncBN')), dict(norm_cfg=dict(type='GN'))])))
    assert not apis.setup_cpu_distributed(cfg, 'none')
    assert cfg.model.backbone.norm_cfg.type == 'SyncBN'
    assert apis.setup_cpu_distributed(cfg, 'pytorch')
    assert cfg.env_cfg.dist_cfg.backend == 'gloo'
    assert cfg.model_wrapper_cfg.type == 'MMDistributedDataParallel'
    assert cfg.model_wrapper_cfg.device_ids is None
    assert cfg.model.backbone.norm_cfg.type == 'BN'
    assert [h['norm_cfg']['type'] for h in cfg.model.decode_head] == ['BN', 'GN']


def test_config_wrappers():
    cfg = Config(dict(model=dict(), model_wrapper_cfg=dict(
        type='MMDistributedDataParallel', device_ids=[0])))
    apis.setup_cpu_distributed(cfg, 'pytorch')
    assert cfg.model_wrapper_cfg.device_ids is None
    cfg = Config(dict(model=dict(), env_cfg=dict(dist_cfg=dict(backend='mpi')),
                      model_wrapper_cfg=dict(type='MMFullyShardedDataParallel')))
    apis.setup_cpu_distributed(cfg, 'pytorch')
    assert cfg.env_cfg.dist_cfg.backend == 'mpi'  # a CPU backend is kept
    assert 'device_ids' not in cfg.model_wrapper_cfg  # not a DDP subclass


def test_replace_sync_bn_counts():
    cfg = dict(a=dict(type='SyncBN'), b=[dict(type='TorchSyncBN'), (dict(type='BN'), )])
    assert apis.replace_sync_bn(cfg) == 2
    assert apis.replace_sync_bn(cfg) == 0


def test_gloo_group_of_one(monkeypatch):
    """``init_cpu_distributed`` starts a real gloo group on a CPU build of
    torch (mmengine's init_dist would call torch.cuda.set_device);
    ``close_distributed`` leaves it."""
    import socket
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        port = s.getsockname()[1]
    for key, value in dict(MASTER_ADDR='127.0.0.1', MASTER_PORT=str(port), RANK='0',
                           WORLD_SIZE='1', LOCAL_RANK='0').items():
        monkeypatch.setenv(key, value)
    cfg = Config(dict(model=dict()))
    apis.setup_cpu_distributed(cfg, 'pytorch')
    assert not apis.init_cpu_distributed(cfg, 'none')
    try:
        assert apis.init_cpu_distributed(cfg, 'pytorch')
        assert is_distributed() and get_world_size() == 1
        assert torch.distributed.get_backend() == 'gloo'
        assert not apis.init_cpu_distributed(cfg, 'pytorch')  # already initialised
    finally:
        apis.close_distributed()
    assert not is_distributed()
    apis.close_distributed()  # a no-op outside a group
