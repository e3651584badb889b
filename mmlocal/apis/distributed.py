"""Distributed launches on CPU-only machines, and their tear-down.

mmengine defaults to NCCL and to DDP with ``device_ids=[LOCAL_RANK]``, and
its ``init_dist`` calls ``torch.cuda.set_device``: all three need a GPU.
With CUDA available every function here does nothing.
"""
from typing import Any

import torch
from mmengine.dist import barrier, init_dist, is_distributed
from mmengine.registry import MODEL_WRAPPERS
from torch.nn.parallel import DistributedDataParallel

SYNC_BN_TYPES = ('SyncBN', 'MMSyncBN', 'TorchSyncBN')


def replace_sync_bn(cfg: Any) -> int:
    """Turn every ``SyncBN`` norm config into ``BN`` (in place); count them.

    ``nn.SyncBatchNorm`` only synchronises CUDA tensors; with CPU processes
    (gloo) each rank keeps its own batch statistics, as plain BN does.
    """
    count = 0
    if isinstance(cfg, dict):
        if cfg.get('type') in SYNC_BN_TYPES:
            cfg['type'] = 'BN'
            count += 1
        for value in cfg.values():
            count += replace_sync_bn(value)
    elif isinstance(cfg, (list, tuple)):
        for value in cfg:
            count += replace_sync_bn(value)
    return count


def setup_cpu_distributed(cfg: Any, launcher: str) -> bool:
    """Make a distributed launch of ``cfg`` work on CPU (in place): gloo, DDP
    keeping the module on CPU (``device_ids=None``), SyncBN replaced by BN.

    Returns True when the config was changed.
    """
    if launcher == 'none' or torch.cuda.is_available():
        return False
    if cfg.get('env_cfg', None) is None:
        cfg.env_cfg = dict()
    if cfg.env_cfg.get('dist_cfg', None) is None:
        cfg.env_cfg['dist_cfg'] = dict()
    dist_cfg = cfg.env_cfg['dist_cfg']
    if dist_cfg.get('backend', 'nccl') == 'nccl':
        dist_cfg['backend'] = 'gloo'
    wrapper = cfg.get('model_wrapper_cfg', None)
    if wrapper is None:
        cfg.model_wrapper_cfg = dict(
            type='MMDistributedDataParallel',
            device_ids=None,
            broadcast_buffers=False,
            find_unused_parameters=cfg.get('find_unused_parameters', False))
    elif _is_ddp(wrapper.get('type', 'MMDistributedDataParallel')):
        wrapper['device_ids'] = None
    replace_sync_bn(cfg.model)
    return True


def _is_ddp(wrapper_type: Any) -> bool:
    if isinstance(wrapper_type, str):
        wrapper_type = MODEL_WRAPPERS.get(wrapper_type)
    return isinstance(wrapper_type, type) and issubclass(
        wrapper_type, DistributedDataParallel)


def init_cpu_distributed(cfg: Any, launcher: str) -> bool:
    """Initialise the process group of a CPU-only distributed launch with
    mmengine's ``init_dist`` (its ``torch.cuda.set_device`` made a no-op);
    the Runner then finds the group initialised and uses it.

    Returns True when it initialised the group.
    """
    if launcher == 'none' or torch.cuda.is_available() or is_distributed():
        return False
    dist_cfg = dict(cfg.get('env_cfg', {}).get('dist_cfg', {}))
    dist_cfg.setdefault('backend', 'gloo')
    set_device = torch.cuda.set_device
    torch.cuda.set_device = lambda device: None
    try:
        init_dist(launcher, **dist_cfg)
    finally:
        torch.cuda.set_device = set_device
    return True


def close_distributed() -> None:
    """Leave the default process group at the end of a distributed launch.

    Without it, gloo's worker threads can outlive the interpreter and abort a
    finished run at exit (``terminate called without an active exception``,
    pytorch/pytorch#190489); NCCL warns. The barrier keeps a rank from
    leaving while another still runs a collective (e.g. the last validation).
    """
    if is_distributed():
        barrier()
        torch.distributed.destroy_process_group()
