"""The local heads in a distributed run: same weights on every rank, and
SyncBN where the model uses it.

The learner is built after the model is wrapped (DDP broadcasts the model's
weights, not the heads'), so the optim wrapper constructor calls
``distribute_heads`` right after building it.
"""
import torch
import torch.nn as nn
from mmengine.dist import broadcast, get_world_size, is_distributed


def distribute_heads(heads: nn.Module, model: nn.Module) -> None:
    """Convert the heads' BatchNorm layers to SyncBN when the model uses
    SyncBN on CUDA (torch SyncBN needs CUDA), then broadcast the heads'
    parameters and buffers from rank 0. Nothing outside a distributed run."""
    if not (is_distributed() and get_world_size() > 1):
        return
    uses_sync_bn = any(isinstance(m, nn.SyncBatchNorm) for m in model.modules())
    if uses_sync_bn and next(heads.parameters(), torch.empty(0)).is_cuda:
        nn.SyncBatchNorm.convert_sync_batchnorm(heads)  # converts the children in place
    for t in list(heads.parameters()) + list(heads.buffers()):
        broadcast(t.data, src=0)
