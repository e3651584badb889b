"""PFF's batched mode (``local.pff.mode='batched'``): the n x n patches of a
feature through the head in one call.

The patches are stacked along the batch, image-major: (B * n^2, C, h, w),
image b's patches at rows b*n^2 ... b*n^2 + n^2 - 1. Every layer then runs
once over all patches (one kernel instead of n^2, forward and backward).
Only BatchNorm couples the images of a batch, and the sequential mode
normalises each patch with that patch's own statistics; image-major stacking
makes that a view: (B * n^2, C, ...) is (B, n^2 * C, ...) in memory, and BN
over n^2 * C channels (weights repeated n^2 times) normalises each
(patch, channel) over the batch and its pixels, exactly as the sequential
mode does.

The head itself is not touched: its *batched twin* is a copy of its module
tree that shares every parameter and buffer with it, with each BN layer
wrapped in a ``PatchBatchNorm`` that reads the original layer. Running
statistics: each patch updates its own zeroed copy (to m x its mean and
variance) and the layer's statistics then end as n^2 sequential updates
leave them (``fold_norm_stats``; float32 rounding of the n^2-term sum).
Dropout draws its masks over the stacked batch, other draws than the
sequential mode's.
"""
import copy
import itertools
import weakref
from typing import Callable, Dict, Optional, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F

_BN = nn.modules.batchnorm._BatchNorm


class PatchBatchNorm(nn.Module):
    """``bn`` (the head's own layer) normalising each of ``patches`` image-major
    stacked patches with its own batch statistics."""

    def __init__(self, bn: _BN) -> None:
        super().__init__()
        self.bn = [bn]  # the head's layer, not a submodule of the twin
        self.patches = 1
        #: zeroed per-patch running statistics of the current call (train mode)
        self.stats: Optional[Tuple[torch.Tensor, torch.Tensor]] = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        bn, p = self.bn[0], self.patches
        if not (bn.training and bn.track_running_stats and bn.running_mean is not None):
            if bn.training:  # batch statistics without running ones: still per patch
                return self._per_patch(x, bn, p, None, None)
            return bn(x)  # eval: the running statistics, the same for every patch
        c = bn.num_features
        mean = torch.zeros(p * c, dtype=bn.running_mean.dtype, device=x.device)
        var = torch.zeros(p * c, dtype=bn.running_var.dtype, device=x.device)
        self.stats = (mean, var)
        return self._per_patch(x, bn, p, mean, var)

    @staticmethod
    def _per_patch(x, bn: _BN, p: int, mean, var) -> torch.Tensor:
        y = x.reshape(x.shape[0] // p, p * x.shape[1], *x.shape[2:])
        weight = bn.weight.repeat(p) if bn.weight is not None else None
        bias = bn.bias.repeat(p) if bn.bias is not None else None
        out = F.batch_norm(y, mean, var, weight, bias, True,
                           bn.momentum if mean is not None else 0., bn.eps)
        return out.reshape(x.shape)


_TWINS: 'weakref.WeakKeyDictionary[nn.Module, nn.Module]' = weakref.WeakKeyDictionary()


def batched_twin(head: nn.Module) -> nn.Module:
    """The head's module tree sharing its parameters and buffers, BN layers
    wrapped in ``PatchBatchNorm``; made once per head."""
    twin = _TWINS.get(head)
    if twin is None:
        shared = {id(t): t for t in itertools.chain(head.parameters(), head.buffers())}
        twin = copy.deepcopy(head, memo=shared)
        for name, m in list(twin.named_modules()):
            if isinstance(m, _BN):
                if isinstance(m, nn.SyncBatchNorm):
                    raise ValueError("local.pff.mode='batched' does not support SyncBatchNorm "
                                     "in local heads: use pff.mode='sequential'")
                if m.momentum is None:
                    raise ValueError(
                        "local.pff.mode='batched' cannot reproduce the cumulative BN average "
                        f'(momentum=None) of {type(head).__name__}.{name}: use '
                        "pff.mode='sequential'")
                parent, _, attr = name.rpartition('.')
                setattr(twin.get_submodule(parent) if parent else twin, attr,
                        PatchBatchNorm(head.get_submodule(name)))
        _TWINS[head] = twin
    return twin


def patch_norms(twin: nn.Module):
    return [m for m in twin.modules() if isinstance(m, PatchBatchNorm)]


@torch.no_grad()
def fold_norm_stats(norms, count: int) -> None:
    """Running statistics as ``count`` sequential updates leave them:
    r_P = (1-m)^P r_0 + sum_p (1-m)^(P-1-p) (m x_p), from each patch's
    m x_p (one ``addmv_`` per buffer)."""
    for pbn in norms:
        if pbn.stats is None:
            continue
        bn = pbn.bn[0]
        keep = 1. - bn.momentum
        decay = _decay(keep, count, bn.running_mean)
        for live, upd in zip((bn.running_mean, bn.running_var), pbn.stats):
            live.addmv_(upd.view(count, -1).t(), decay, beta=keep ** count)
        if bn.num_batches_tracked is not None:
            bn.num_batches_tracked.add_(count)
        pbn.stats = None


_DECAYS: Dict[tuple, torch.Tensor] = {}


def _decay(keep: float, count: int, like: torch.Tensor) -> torch.Tensor:
    """(1-m)^(P-1-p) for p = 0..P-1, made once per momentum, P and device."""
    key = (keep, count, like.dtype, like.device)
    if key not in _DECAYS:
        _DECAYS[key] = torch.tensor([keep ** (count - 1 - p) for p in range(count)],
                                    dtype=like.dtype, device=like.device)
    return _DECAYS[key]


def run_batched(head: nn.Module, feat: torch.Tensor, targets, out_size: Tuple[int, int],
                weight: float, backward: Callable[[torch.Tensor], None], n: int,
                tiled=('tile', 'grid')) -> Dict[str, torch.Tensor]:
    """PFF over an n x n grid that divides the map (and the output, for
    tiled predictions) with one call of the head's batched twin."""
    B, C, H, W = feat.shape
    h, w, p = H // n, W // n, n * n
    size = (out_size[0] // n, out_size[1] // n)
    twin = batched_twin(head)
    twin.train(head.training)
    norms = patch_norms(twin)
    for pbn in norms:
        pbn.patches = p
    # (B, C, n, h, n, w) -> (B, n, n, C, h, w) -> (B * n^2, C, h, w)
    patches = feat.reshape(B, C, n, h, n, w).permute(0, 2, 4, 1, 3, 5).reshape(B * p, C, h, w)
    preds = twin(patches, size)
    fused = {}
    for name, value in preds.items():
        value = value.reshape(B, p, *value.shape[1:])
        if head.FUSION.get(name, 'mean') in tiled:  # (B, n, n, ..., oh, ow) -> (B, ..., H, W)
            *mid, oh, ow = value.shape[2:]
            value = value.reshape(B, n, n, *mid, oh, ow)
            k = len(mid)
            value = value.permute(0, *range(3, 3 + k), 1, 3 + k, 2, 4 + k)
            fused[name] = value.reshape(B, *mid, n * oh, n * ow)
        else:
            fused[name] = value.mean(1)
    losses = head.loss(fused, targets)
    backward(weight * sum(losses.values()))
    fold_norm_stats(norms, p)
    return {k: v.detach() for k, v in losses.items()}
