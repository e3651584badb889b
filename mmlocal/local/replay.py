"""Running a forward again as it first ran: the same random draws, and BN
running statistics left as they are.

PFF's second pass over each patch (``head_runner.py``) and the recomputation
of a module's blocks (``recompute.py``) replay a forward whose BN statistics
were already updated once. Train-mode BN normalises with batch statistics
and its backward does not read the running ones, so a replay runs the
modules with those buffers set to ``None`` for the call
(``torch.func.functional_call``): BN neither reads nor updates them, and
nothing has to be saved and copied back (the clone + copy-back this replaces
cost two copies and six aten ops per BN layer and replay).
"""
from typing import Dict, Optional

import torch
import torch.nn as nn
from torch.func import functional_call


def rng_state(device: torch.device):
    """The generator state a forward on ``device`` draws from."""
    cuda = torch.cuda.get_rng_state(device) if device.type == 'cuda' else None
    return torch.get_rng_state(), cuda


def set_rng_state(state, device: torch.device) -> None:
    cpu, cuda = state
    torch.set_rng_state(cpu)
    if cuda is not None:
        torch.cuda.set_rng_state(cuda, device)


def tracking_norms(module: nn.Module) -> Dict[str, nn.modules.batchnorm._BatchNorm]:
    """Train-mode BN layers of ``module`` that update running statistics,
    by name (eval-mode BN normalises with them and must keep them)."""
    return {name: m for name, m in module.named_modules()
            if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.training
            and m.track_running_stats and m.running_mean is not None}


def without_norm_stats(module: nn.Module) -> Dict[str, Optional[torch.Tensor]]:
    """``functional_call`` buffers that hide the running statistics of
    ``tracking_norms(module)`` for one call."""
    hidden: Dict[str, Optional[torch.Tensor]] = {}
    for name, m in tracking_norms(module).items():
        prefix = f'{name}.' if name else ''
        for buf in ('running_mean', 'running_var', 'num_batches_tracked'):
            if getattr(m, buf, None) is not None:
                hidden[prefix + buf] = None
    return hidden


def replay(module: nn.Module, *args, **kwargs):
    """``module(*args, **kwargs)`` with train-mode BN running statistics
    neither read nor updated; the result and its gradients are those of the
    first run (same batch statistics)."""
    hidden = without_norm_stats(module)
    if not hidden:
        return module(*args, **kwargs)
    return functional_call(module, hidden, args, kwargs, strict=False)
