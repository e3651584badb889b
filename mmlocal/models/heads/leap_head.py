"""MLAAN's leap-augmented module in front of a local head.

Copies of *later* backbone blocks let an early module's local loss look at
deep features (ALGORITHMS.md §6.3-6.4): z = A_0(x) + E_0(x), then A_1..A_n,
then the head, where A are trainable deep copies (trained by this head's
loss) and E_0 a copy of the first leap block tracking the live block as an
exponential moving average, E <- r E + (1 - r) live, r = 0.995 the fraction
kept (mmengine's ``ExponentialMovingAverage`` uses momentum = 1 - r).
Gradients flow through both branches into the local module. E_0 is frozen
(``requires_grad=False``), as the paper and MLAAN's ``resnetDGLbin.py`` /
``resnetMLAAN.py``; with ``ema_trainable`` the optimizer trains it as well,
as ``resnetInfoProbin.py`` (its EMA copies are never frozen).
"""
import copy
from typing import List, Sequence, Tuple

import torch
import torch.nn as nn

from mmlocal.registry import MODELS
from mmlocal.structures import LocalTargets, Preds
from .local_heads import LocalHead


@MODELS.register_module()
class LeapAugmentedHead(LocalHead):
    """``head`` preceded by leap copies of the live blocks ``sources``.

    Args:
        blocks: the live blocks to copy (in order); their paths are kept for
            the EMA update.
        head: the local head that reads the last copy's output.
        momentum: r, the EMA keep fraction.
        ema_trainable: the EMA copy receives gradients and is trained by the
            optimizer (besides its EMA update, if the plan gives one).
    """

    def __init__(self, blocks: Sequence[nn.Module], sources: Sequence[str],
                 head: LocalHead, momentum: float = 0.995,
                 ema_trainable: bool = False) -> None:
        super().__init__()
        if not blocks:
            raise ValueError('a leap-augmented head needs at least one block to copy')
        if not 0. <= momentum <= 1.:
            raise ValueError(f'mlaan.momentum (EMA keep fraction r) must be in [0, 1], got {momentum}')
        self.leap = nn.ModuleList(copy.deepcopy(b) for b in blocks)
        self.ema = copy.deepcopy(blocks[0])
        for p in self.ema.parameters():
            p.requires_grad_(ema_trainable)
        self.sources = list(sources)
        self.head = head
        self.momentum = momentum
        self.FUSION = head.FUSION
        # copies must start from the live weights *after* the model's weight
        # init (which runs after the optimizer is built): done at first use
        self.register_buffer('synced', torch.tensor(False))

    def forward(self, feat: torch.Tensor, out_size: Tuple[int, int]) -> Preds:
        z = self.leap[0](feat) + self.ema(feat)
        for block in self.leap[1:]:
            z = block(z)
        return self.head(z, out_size)

    def loss(self, preds: Preds, targets: LocalTargets):
        return self.head.loss(preds, targets)

    @torch.no_grad()
    def sync_from(self, live: List[nn.Module]) -> None:
        """Copy the live blocks' weights into the trainable and EMA copies."""
        for copy_, block in zip(self.leap, live):
            copy_.load_state_dict(block.state_dict())
        self.ema.load_state_dict(live[0].state_dict())
        self.synced.fill_(True)

    @torch.no_grad()
    def update_ema(self, live_first: nn.Module) -> None:
        """E <- r E + (1 - r) live, parameters only (BN statistics stay the
        copy's own), once per iteration."""
        r = self.momentum
        ema, live = list(self.ema.parameters()), list(live_first.parameters())
        # multi-tensor ops: two launches per copy, the same arithmetic per element
        torch._foreach_mul_(ema, r)
        torch._foreach_add_(ema, live, alpha=1 - r)
