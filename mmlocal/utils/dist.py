"""Losses over the global batch in distributed runs.

A loss that couples samples (PredSim's similarity matching, SupCon) computed
per rank sees only that rank's B samples: a 2-process run with B per rank
would not equal one process with 2B. ``gather_batch`` concatenates the rows
of all ranks so the loss is the global one. Only the local rows carry the
graph, and their gradient is multiplied by the world size: every rank
computes the same global loss L, the gradients of its own rows are
world * dL/dx_rank, and the optimizer wrapper's average over ranks gives
exactly dL/dtheta. No communication in backward.
"""
import torch
import torch.distributed as torch_dist
from mmengine.dist import get_rank, get_world_size


class _GatherBatch(torch.autograd.Function):

    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:
        world, rank = get_world_size(), get_rank()
        size = torch.tensor([x.shape[0]], device=x.device)
        sizes = [torch.zeros_like(size) for _ in range(world)]
        torch_dist.all_gather(sizes, size)
        sizes = [int(s) for s in sizes]
        longest = max(sizes)
        padded = x.new_zeros((longest, ) + tuple(x.shape[1:]))
        padded[:x.shape[0]] = x
        parts = [torch.empty_like(padded) for _ in range(world)]
        torch_dist.all_gather(parts, padded.contiguous())
        ctx.world = world
        ctx.begin = sum(sizes[:rank])
        ctx.end = ctx.begin + x.shape[0]
        return torch.cat([p[:n] for p, n in zip(parts, sizes)])

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        return grad[ctx.begin:ctx.end] * ctx.world


def gather_batch(x: torch.Tensor) -> torch.Tensor:
    """Rows of ``x`` from every rank (rank order); ``x`` itself when not
    distributed. Call it on all ranks, in the same order."""
    if get_world_size() == 1:
        return x
    return _GatherBatch.apply(x)
