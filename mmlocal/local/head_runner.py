"""Running a local head and backpropagating its loss to the feature.

``run_head`` is the plain path. ``run_head_patched`` is HPFF's Patch Feature
Fusion: the feature is cut into n x n patches, the *same* head runs on each,
predictions are fused (vectors averaged, dense maps tiled back: at pixel
resolution, or on the feature grid for dense detection outputs) and the loss
is taken on the fused prediction, exactly the paper's
y_hat = 1/n^2 sum_kl g(x^(k,l)). Two modes (``local.pff.mode``), the same
maths:

* ``'sequential'`` (default) saves memory: a first pass without graph gives
  the fused prediction and the loss's gradient w.r.t. it; a second pass
  recomputes each patch with graph and backpropagates its share, so only one
  patch's activations are alive at once. BatchNorm statistics are updated
  once (first pass; the second is a ``replay``) and dropout masks are
  replayed (RNG restored). 2 n^2 head forwards and n^2 backwards.
* ``'batched'`` saves launches: one forward of the head over all n^2 patches
  stacked along the batch (one kernel per layer over n^2 x B images, every
  BN layer normalising each patch with that patch's own statistics), one
  backward (``pff_batched.py``). Its activations are those of the unpatched
  head. BN running statistics end as n^2 sequential updates leave them (up
  to float32 rounding). Dropout draws other masks than the sequential mode.
  Patch grids that do not divide the map (odd sizes) run sequentially.
"""
import logging
from typing import Callable, Dict, List, Tuple

import torch
import torch.nn as nn
from mmengine.config import ConfigDict
from mmengine.logging import print_log

from mmlocal.registry import PFF_VARIANTS
from .config import PFFMode
from .pff_batched import run_batched
from .replay import replay, rng_state, set_rng_state

Backward = Callable[[torch.Tensor], None]


def _sum_losses(losses: Dict[str, torch.Tensor]) -> torch.Tensor:
    return sum(losses.values())


def run_head(head: nn.Module, feat: torch.Tensor, targets, out_size: Tuple[int, int],
             weight: float, backward: Backward) -> Dict[str, torch.Tensor]:
    """Forward ``head`` on ``feat`` (a leaf), backward ``weight * loss``.

    Returns the detached, unweighted losses for logging.
    """
    losses = head.loss(head(feat, out_size), targets)
    backward(weight * _sum_losses(losses))
    return {k: v.detach() for k, v in losses.items()}


#: tiled fusions: 'tile' places each patch's prediction in its image region
#: (reconstructions, segmentation logits at pixel resolution), 'grid' in its
#: region of the feature grid (dense detection outputs at the feature's stride)
_TILED = ('tile', 'grid')


def _region(cell, kind: str) -> tuple:
    (frow, orow), (fcol, ocol) = cell
    return (Ellipsis, orow, ocol) if kind == 'tile' else (Ellipsis, frow, fcol)


def patch_slices(size: int, n: int, out: int) -> List[Tuple[slice, slice]]:
    """n near-equal feature slices of ``size`` and the matching slices of an
    output of size ``out`` (odd sizes: pieces differ by one)."""
    bounds = [round(i * size / n) for i in range(n + 1)]
    out_bounds = [round(b * out / size) for b in bounds]
    return [(slice(bounds[i], bounds[i + 1]), slice(out_bounds[i], out_bounds[i + 1]))
            for i in range(n)]


def check_patch_grid(n: int, spatial: Tuple[int, int], where: str) -> None:
    h, w = spatial
    if n > h or n > w:
        raise ValueError(
            f'PFF patch grid {n}x{n} is larger than the {h}x{w} feature map at {where}: '
            f'use pff.patches <= {min(h, w)} or move the boundary to a larger map')


def run_head_patched(head: nn.Module, feat: torch.Tensor, targets,
                     out_size: Tuple[int, int], weight: float, backward: Backward,
                     n: int, mode: PFFMode = 'sequential') -> Dict[str, torch.Tensor]:
    """PFF: ``head`` on n x n patches of ``feat``, predictions fused, loss on
    the fusion; gradients reach ``feat`` and the head's parameters."""
    H, W = feat.shape[-2:]
    check_patch_grid(n, (H, W), type(head).__name__)
    if mode == 'batched':
        if _divides(n, (H, W), out_size, head.FUSION):
            return run_batched(head, feat, targets, out_size, weight, backward, n, _TILED)
        _warn_uneven(n, (H, W), out_size)
    return _run_sequential(head, feat, targets, out_size, weight, backward, n)


def _divides(n: int, spatial: Tuple[int, int], out_size: Tuple[int, int],
             fusion: Dict[str, str]) -> bool:
    sizes = list(spatial)
    if 'tile' in fusion.values():
        sizes += list(out_size)
    return all(s % n == 0 for s in sizes)


_warned_uneven = set()


def _warn_uneven(n: int, spatial, out_size) -> None:
    key = (n, tuple(spatial), tuple(out_size))
    if key not in _warned_uneven:
        _warned_uneven.add(key)
        print_log(f"local.pff.mode='batched': a {n}x{n} patch grid does not divide the "
                  f'{spatial[0]}x{spatial[1]} feature map (or the {out_size[0]}x{out_size[1]} '
                  'output); these patches run sequentially', logger='current',
                  level=logging.WARNING)


def _run_sequential(head: nn.Module, feat: torch.Tensor, targets,
                    out_size: Tuple[int, int], weight: float, backward: Backward,
                    n: int) -> Dict[str, torch.Tensor]:
    H, W = feat.shape[-2:]
    rows = patch_slices(H, n, out_size[0])
    cols = patch_slices(W, n, out_size[1])
    grid = [(r, c) for r in rows for c in cols]
    fusion = head.FUSION
    device = feat.device

    # pass 1: predictions without graph (BN statistics updated here, once)
    states, preds = [], []
    with torch.no_grad():
        for (fr, orow), (fc, ocol) in grid:
            states.append(rng_state(device))
            size = (orow.stop - orow.start, ocol.stop - ocol.start)
            preds.append(head(feat[..., fr, fc].detach(), size))
    after = rng_state(device)
    fused = {}
    for name in preds[0]:
        kind = fusion.get(name, 'mean')
        if kind in _TILED:
            first = preds[0][name]
            size = tuple(out_size) if kind == 'tile' else (H, W)
            out = first.new_empty(first.shape[:-2] + size)
            for cell, p in zip(grid, preds):
                out[_region(cell, kind)] = p[name]
        else:
            out = torch.stack([p[name] for p in preds]).mean(0)
        fused[name] = out.requires_grad_()
    del preds
    losses = head.loss(fused, targets)
    backward(weight * _sum_losses(losses))

    # pass 2: one patch at a time with graph, each gets its share of the
    # gradient. Each patch is its own leaf whose gradient is written into its
    # region: backpropagating through a slice of ``feat`` would materialise a
    # zero-padded gradient of the whole map for every patch.
    grad_feat = torch.zeros_like(feat) if feat.requires_grad else None
    for ((fr, orow), (fc, ocol)), state in zip(grid, states):
        set_rng_state(state, device)
        size = (orow.stop - orow.start, ocol.stop - ocol.start)
        patch = feat[..., fr, fc].detach().requires_grad_(feat.requires_grad)
        out = replay(head, patch, size)
        outs, grads = [], []
        for name, value in out.items():
            g = fused[name].grad
            if g is None:
                continue
            kind = fusion.get(name, 'mean')
            if kind in _TILED:
                g = g[_region(((fr, orow), (fc, ocol)), kind)]
            else:
                g = g / len(grid)
            outs.append(value)
            grads.append(g.to(value.dtype))
        if outs:
            torch.autograd.backward(outs, grads)
        if patch.grad is not None:
            grad_feat[..., fr, fc] += patch.grad
        del out, outs, grads, patch
    if grad_feat is not None:
        if feat.is_leaf:
            feat.grad = grad_feat if feat.grad is None else feat.grad + grad_feat
        else:  # a view of the leaf (ViT tokens reshaped to their grid)
            torch.autograd.backward(feat, grad_feat)
    set_rng_state(after, device)
    return {k: v.detach() for k, v in losses.items()}


# ------------------------------------------------------- PFF strategies
class PFFStrategy:
    """What a PFF variant does to a planned head (``local.pff.variant``; no
    variant: this base, the plain head). One dispatch for the runtime step
    and the analysis: ``run_planned_head``.

    ``needs_decoder``: the variant patches the reconstruction decoder only,
    so heads without one stay unpatched (the plan) and a config whose
    patched heads have none is refused (the schema).
    """
    needs_decoder = False

    def check(self, n: int, spatial: Tuple[int, int], where: str) -> None:
        """Refuse a grid the head cannot run on (at build time)."""

    def decoder(self, cfg: dict, n: int) -> dict:
        """The reconstruction decoder's config under this variant."""
        return cfg

    def run(self, head: nn.Module, feat: torch.Tensor, targets, out_size: Tuple[int, int],
            weight: float, backward: Backward, n: int,
            mode: PFFMode) -> Dict[str, torch.Tensor]:
        return run_head(head, feat, targets, out_size, weight, backward)


@PFF_VARIANTS.register_module(name='paper')
class PaperPFF(PFFStrategy):
    """The HPFF paper (§5.1): the same head on n x n patches of the feature,
    predictions fused, loss on the fusion (``run_head_patched``)."""

    def check(self, n, spatial, where):
        check_patch_grid(n, spatial, where)

    def run(self, head, feat, targets, out_size, weight, backward, n, mode):
        return run_head_patched(head, feat, targets, out_size, weight, backward, n, mode)


@PFF_VARIANTS.register_module(name='quadrant')
class QuadrantPFF(PFFStrategy):
    """HPFF's CIFAR code (§5.3): psi on the whole map, n^2 own decoders, one
    per quadrant of the output, BCEs summed (``QuadrantReconDecoder``)."""
    needs_decoder = True

    def decoder(self, cfg, n):
        return ConfigDict(type='QuadrantReconDecoder', patches=n, decoder=dict(cfg))


@PFF_VARIANTS.register_module(name='output')
class OutputPFF(PFFStrategy):
    """HPFF's ImageNet code (§5.4): one decoder, its BCE taken per quadrant
    of the output and summed (n^2 times the mean BCE)."""
    needs_decoder = True

    def decoder(self, cfg, n):
        return ConfigDict(dict(cfg, loss_scale=float(n * n)))


_STRATEGIES: Dict[str, PFFStrategy] = {'': PFFStrategy()}


def pff_strategy(variant: str) -> PFFStrategy:
    """The strategy of a ``HeadPlan.pff`` ('': no PFF), one instance per
    variant (the step asks for it per head and step: no registry search)."""
    strategy = _STRATEGIES.get(variant)
    if strategy is None:
        cls = PFF_VARIANTS.get(variant)
        if cls is None:
            raise ValueError(f'unknown PFF variant {variant!r}: choose one of '
                             f'{sorted(PFF_VARIANTS.module_dict)} (local.pff.variant)')
        strategy = _STRATEGIES[variant] = cls()
    return strategy


def run_planned_head(hp, head: nn.Module, feat: torch.Tensor, targets,
                     out_size: Tuple[int, int], backward: Backward) -> Dict[str, torch.Tensor]:
    """Forward ``head`` as the plan ``hp`` says (its PFF variant, patches and
    mode) and backward ``hp.weight`` x its loss; the detached losses."""
    return pff_strategy(hp.pff).run(head, feat, targets, out_size, hp.weight, backward,
                                    hp.patches, hp.pff_mode)
