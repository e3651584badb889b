"""The shape probe: one no-grad forward of the backbone on a dummy input.

Local heads take their channels and map sizes from the backbone itself,
never from the user, and the ``memory`` split balances measured activation
costs; both come from this single pass. A pure function of the model.
"""
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence, Tuple

import torch
import torch.nn as nn

from mmlocal.structures import FeatureInfo

# dummy-input size for backbones with a known input size
_PROBE_SIZES = {'CifarResNet': (32, 32), 'ResNet_CIFAR': (32, 32)}


def hw_argument(args: tuple, kwargs: dict) -> Optional[Tuple[int, int]]:
    """The (h, w) a token block is called with (Swin's and MiT's
    ``block(x, hw_shape)``): the first pair of ints after the tokens."""
    for v in list(args[1:]) + list(kwargs.values()):
        if isinstance(v, (tuple, list, torch.Size)) and len(v) == 2 and all(
                isinstance(i, int) for i in v):
            return int(v[0]), int(v[1])
    return None


@dataclass(frozen=True)
class ProbeResult:
    """What one dummy forward showed about every block of a backbone."""
    size: Tuple[int, int]  # (H, W) of the dummy input
    shapes: Dict[str, torch.Size]  # block path -> output shape
    costs: Dict[str, float]  # block path -> activation elements of its leaf modules
    grid: Optional[Tuple[int, int]] = None  # ViT patch grid at ``size``
    extra_tokens: int = 0  # class/distillation tokens before the patch tokens
    #: block path -> the token grid it was called with (Swin, MiT: ``hw_shape``)
    grids: Dict[str, Tuple[int, int]] = field(default_factory=dict)

    def token_grid(self, path: str) -> Optional[Tuple[int, int]]:
        """The grid of block ``path``'s token output: its own ``hw_shape``
        argument, else the ViT patch grid."""
        return self.grids.get(path, self.grid)

    def feature(self, path: str) -> FeatureInfo:
        """The FeatureInfo of the output of block ``path``."""
        shape = self.shapes[path]
        if len(shape) == 4:
            return FeatureInfo(int(shape[1]), (int(shape[2]), int(shape[3])),
                               max(self.size[0] // int(shape[2]), 1))
        grid = self.token_grid(path)
        if len(shape) == 3 and grid is not None:
            return FeatureInfo(int(shape[2]), grid, max(self.size[0] // grid[0], 1), True)
        raise ValueError(f'mmlocal cannot give a local head the output of {path} '
                         f'(shape {tuple(shape)}): choose a boundary that returns a map or tokens')


def default_probe_size(backbone: nn.Module) -> Tuple[int, int]:
    """The backbone's own input size when it declares one (``img_size``, or
    its patch embedding's: windowed transformers need their full-size grid),
    else 64x64."""
    size = getattr(backbone, 'img_size', None)
    if size is None:
        size = getattr(getattr(backbone, 'patch_embed', None), 'init_input_size', None)
    if size is not None:
        return (size, size) if isinstance(size, int) else tuple(size)
    return _PROBE_SIZES.get(type(backbone).__name__, (64, 64))


def _not_blocks(backbone: nn.Module, backbone_path: str, paths: Sequence[str],
                called: List[str], outputs: Dict[str, str]) -> str:
    """Why the listed blocks are not blocks of a flat forward ('' if they are).
    ``called``: every backbone submodule call, in order; ``outputs``: the
    type each listed block returned."""
    name = type(backbone).__name__
    seen = set(called)
    never = [p for p in paths if p not in outputs]
    if never:
        def runs_inside(p: str) -> List[str]:
            """The outermost modules called inside container p."""
            inner = dict.fromkeys(c for c in called if c.startswith(p + '.'))
            return [c for c in inner if not any(
                a in seen for a in _ancestors(c, p))]

        shown = '; '.join(
            f'{p} is a {type(model_part(backbone, backbone_path, p)).__name__}'
            + (f' whose modules the forward calls directly: {", ".join(runs_inside(p)[:6])}'
               + (', ...' if len(runs_inside(p)) > 6 else '') if runs_inside(p)
               else ' the forward never reaches')
            for p in never[:2])
        return (f'{name}.forward never calls {len(never)} of the {len(paths)} listed blocks '
                f'({shown}). A block must be a module the forward calls one after another with '
                f'one tensor; register a block list for {name} in mmlocal.registry.BLOCK_LISTS '
                'naming such modules, or give local.boundaries')
    not_tensor = [(p, outputs[p]) for p in paths if outputs[p] != 'Tensor']
    if not_tensor:
        shown = ', '.join(f'{p} returns a {t}' for p, t in not_tensor[:3])
        return (f'{name}: every block must return one tensor to be cut after, but {shown}: '
                'a boundary there would have to cut several tensors at once. Choose boundaries '
                'among blocks that return one tensor (local.boundaries)')
    listed = set(paths)
    order = [c for c in called if c in listed]
    if order != list(paths):
        return (f'{name}.forward calls the listed blocks in the order {order[:8]}, not once '
                f'each in the listed order {list(paths)[:8]}: a block list must follow the '
                'forward (local.boundaries, or a BLOCK_LISTS entry)')
    return ''


def _ancestors(path: str, root: str) -> List[str]:
    """Module paths strictly between ``root`` and ``path``."""
    parts = path[len(root) + 1:].split('.')
    return [root + '.' + '.'.join(parts[:i]) for i in range(1, len(parts))]


def model_part(backbone: nn.Module, backbone_path: str, path: str) -> nn.Module:
    return backbone.get_submodule(path[len(backbone_path) + 1:])


@torch.no_grad()
def probe_blocks(model: nn.Module, backbone_path: str, paths: Sequence[str],
                 size: Tuple[int, int]) -> ProbeResult:
    """Run the backbone once (eval mode, no grad) on a dummy ``size`` input.

    Costs count the output elements of every leaf module inside a block;
    layers before the first listed block (a deep stem before the max-pool)
    count towards the first block, i.e. the first module. Token blocks
    called with their grid (``block(x, hw_shape)``) record it. Blocks the
    forward does not call in the listed order, or that return no tensor,
    are refused with what the forward did call.
    """
    backbone = model.get_submodule(backbone_path)
    shapes: Dict[str, torch.Size] = {}
    grids: Dict[str, Tuple[int, int]] = {}
    outputs: Dict[str, str] = {}
    costs = {p: 0. for p in paths}
    current = [None]
    called: List[str] = []
    handles = []

    def enter(path):
        def hook(mod, args, kwargs):
            current[0] = path
            hw = hw_argument(args, kwargs)
            if hw is not None:
                grids[path] = hw
        return hook

    def leave(path):
        def hook(mod, args, out):
            outputs.setdefault(path, type(out).__name__ if not isinstance(out, torch.Tensor)
                               else 'Tensor')
            if isinstance(out, torch.Tensor):
                shapes[path] = out.shape
        return hook

    def record(path):
        def hook(mod, args):
            called.append(path)
        return hook

    def leaf(mod, args, out):
        if isinstance(out, torch.Tensor):
            costs[current[0] or paths[0]] += out.numel()

    for name, m in backbone.named_modules():
        if name:
            handles.append(m.register_forward_pre_hook(record(f'{backbone_path}.{name}')))
    for p in paths:
        m = model.get_submodule(p)
        handles += [m.register_forward_pre_hook(enter(p), with_kwargs=True),
                    m.register_forward_hook(leave(p))]
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
    why = _not_blocks(backbone, backbone_path, paths, called, outputs)
    if why:
        raise ValueError(why)
    grids = {p: g for p, g in grids.items() if len(shapes[p]) == 3}
    grid = getattr(backbone, 'patch_resolution', None)
    return ProbeResult(tuple(size), shapes, costs, tuple(grid) if grid is not None else None,
                       int(getattr(backbone, 'num_extra_tokens', 0)), grids)
