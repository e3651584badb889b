"""The shape probe: one no-grad forward of the backbone on a dummy input.

Local heads take their channels and map sizes from the backbone itself,
never from the user, and the ``memory`` split balances measured activation
costs; both come from this single pass. A pure function of the model.
"""
from dataclasses import dataclass
from typing import Dict, Optional, Sequence, Tuple

import torch
import torch.nn as nn

from mmlocal.structures import FeatureInfo

# dummy-input size for backbones with a known input size
_PROBE_SIZES = {'CifarResNet': (32, 32), 'ResNet_CIFAR': (32, 32)}


@dataclass(frozen=True)
class ProbeResult:
    """What one dummy forward showed about every block of a backbone."""
    size: Tuple[int, int]  # (H, W) of the dummy input
    shapes: Dict[str, torch.Size]  # block path -> output shape
    costs: Dict[str, float]  # block path -> activation elements of its leaf modules
    grid: Optional[Tuple[int, int]] = None  # ViT patch grid at ``size``
    extra_tokens: int = 0  # class/distillation tokens before the patch tokens

    def feature(self, path: str) -> FeatureInfo:
        """The FeatureInfo of the output of block ``path``."""
        shape = self.shapes[path]
        if len(shape) == 4:
            return FeatureInfo(int(shape[1]), (int(shape[2]), int(shape[3])),
                               max(self.size[0] // int(shape[2]), 1))
        if len(shape) == 3 and self.grid is not None:
            return FeatureInfo(int(shape[2]), self.grid, max(self.size[0] // self.grid[0], 1),
                               True)
        raise ValueError(f'mmlocal cannot give a local head the output of {path} '
                         f'(shape {tuple(shape)}): choose a boundary that returns a map or tokens')


def default_probe_size(backbone: nn.Module) -> Tuple[int, int]:
    """The backbone's own input size when it declares one, else 64x64."""
    size = getattr(backbone, 'img_size', None)
    if size is not None:
        return (size, size) if isinstance(size, int) else tuple(size)
    return _PROBE_SIZES.get(type(backbone).__name__, (64, 64))


@torch.no_grad()
def probe_blocks(model: nn.Module, backbone_path: str, paths: Sequence[str],
                 size: Tuple[int, int]) -> ProbeResult:
    """Run the backbone once (eval mode, no grad) on a dummy ``size`` input.

    Costs count the output elements of every leaf module inside a block;
    layers before the first listed block (a deep stem before the max-pool)
    count towards the first block, i.e. the first module.
    """
    backbone = model.get_submodule(backbone_path)
    shapes: Dict[str, torch.Size] = {}
    costs = {p: 0. for p in paths}
    current = [None]
    handles = []

    def enter(path):
        def hook(mod, args):
            current[0] = path
        return hook

    def leave(path):
        def hook(mod, args, out):
            if isinstance(out, torch.Tensor):
                shapes[path] = out.shape
        return hook

    def leaf(mod, args, out):
        if isinstance(out, torch.Tensor):
            costs[current[0] or paths[0]] += out.numel()

    for p in paths:
        m = model.get_submodule(p)
        handles += [m.register_forward_pre_hook(enter(p)), m.register_forward_hook(leave(p))]
    for m in backbone.modules():
        if len(list(m.children())) == 0:
            handles.append(m.register_forward_hook(leaf))
    training = backbone.training
    backbone.eval()
    param = next(model.parameters(), None)
    device = param.device if param is not None else torch.device('cpu')
    try:
        backbone(torch.zeros(2, 3, *size, device=device))
    finally:
        backbone.train(training)
        for h in handles:
            h.remove()
    missing = [p for p in paths if p not in shapes]
    if missing:
        raise ValueError(f'blocks {missing[:3]} returned no tensor during the probe; '
                         'give explicit local.boundaries')
    grid = getattr(backbone, 'patch_resolution', None)
    return ProbeResult(tuple(size), shapes, costs, tuple(grid) if grid is not None else None,
                       int(getattr(backbone, 'num_extra_tokens', 0)))
