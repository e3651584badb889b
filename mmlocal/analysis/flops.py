"""FLOPs of a plan's local heads on one batch, run as the step runs them.

The heads' share of a step (their forward, PFF's passes and the backward of
their losses down to the feature they read) is counted by running each head
of the learner's plan with the runtime's ``run_planned_head`` on the
features the backbone gives for the batch; the rest of a step is its total
minus this. Nothing of the runtime is patched.
"""
import math
from typing import Dict, List, Tuple

import torch
import torch.nn as nn
from torch.utils.flop_counter import FlopCounterMode

from mmlocal.local.head_runner import run_planned_head
from mmlocal.local.step import as_map


def _boundary_features(model: nn.Module, boundaries: List[str],
                       inputs: torch.Tensor, data_samples) -> Dict[str, torch.Tensor]:
    feats: Dict[str, torch.Tensor] = {}
    handles = [model.get_submodule(b).register_forward_hook(
        lambda mod, args, out, b=b: feats.__setitem__(b, out.detach())) for b in boundaries]
    try:
        with torch.no_grad():
            model(inputs, data_samples, mode='tensor')
    finally:
        for h in handles:
            h.remove()
    return feats


def local_head_flops(learner, model: nn.Module, batch: dict) -> List[Tuple[str, float]]:
    """(head key, FLOPs) of every head of ``learner``'s plan on ``batch`` (a
    data batch, preprocessed here by the model's preprocessor). Heads of
    token features read the grid the probe found (ViT); blocks that report
    their own grid (Swin, MiT) are refused."""
    data = model.data_preprocessor(batch, True)
    inputs, samples = data['inputs'], data['data_samples']
    targets = learner.adapter(inputs, samples, model.data_preprocessor)
    out_size = tuple(inputs.shape[-2:])
    feats = _boundary_features(model, learner.boundaries, inputs, samples)
    probe = learner.probe
    counts = []
    for hp in learner.plan.heads:
        h = feats[learner.boundaries[hp.module]]
        leaf = h.clone().requires_grad_()
        feat = leaf
        if h.dim() == 3:
            if probe.grid is None or probe.shapes.get(learner.boundaries[hp.module]) is None:
                raise ValueError('local_head_flops reads token grids from the probe (ViT); '
                                 'blocks with their own grid are not supported')
            (gh, gw), (ph, pw) = probe.grid, probe.size
            grid = math.ceil(out_size[0] * gh / ph), math.ceil(out_size[1] * gw / pw)
            feat = as_map(leaf, grid, probe.extra_tokens)
        with FlopCounterMode(display=False) as counter:
            run_planned_head(hp, learner.head(hp), feat, targets, out_size,
                             lambda loss: loss.backward())
        counts.append((hp.key, float(counter.get_total_flops())))
    return counts
