"""Local heads: one module's whole local supervision (predictors + losses).

A head maps a feature to named predictions (``forward``) and predictions to
weighted losses (``loss``). Keeping the two apart is what lets PFF run the
same head on n x n patches and fuse the predictions before the loss: every
prediction declares how patches fuse in ``FUSION`` ('mean' for vectors, as
in the HPFF paper; 'tile' for dense maps such as reconstructions).
"""
from typing import Dict, Optional, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmengine.config import ConfigDict

from mmlocal.registry import MODELS
from mmlocal.structures import LocalTargets, Preds
from ..losses import cross_entropy, predsim_loss, supcon_loss
from .decoders import reconstruction_loss


class LocalHead(nn.Module):
    """Base of local heads. ``out_size`` is the pixel size of the image region
    the feature covers (the whole image, or one PFF patch's region)."""
    FUSION: Dict[str, str] = {}

    def forward(self, feat: torch.Tensor, out_size: Tuple[int, int]) -> Preds:
        raise NotImplementedError

    def loss(self, preds: Preds, targets: LocalTargets) -> Dict[str, torch.Tensor]:
        raise NotImplementedError


def _build(cfg, **defaults) -> nn.Module:
    cfg = ConfigDict(cfg)
    for k, v in defaults.items():
        cfg.setdefault(k, v)
    return MODELS.build(cfg)


@MODELS.register_module()
class ClassifierHead(LocalHead):
    """DGL's local supervision: psi + cross-entropy (or SupCon).

    For segmentation targets psi produces dense logits, upsampled to the
    label region and trained with CE ignoring ``ignore_index``.
    """

    def __init__(self, in_channels: int, num_classes: int, classifier: dict,
                 loss_weight: float = 1.0, task_loss: str = 'softmax',
                 feature_dim: int = 128, dense: bool = False) -> None:
        super().__init__()
        if task_loss not in ('softmax', 'contrast'):
            raise ValueError(f"task_loss must be 'softmax' or 'contrast', got {task_loss!r}")
        out = feature_dim if task_loss == 'contrast' else num_classes
        self.classifier = _build(classifier, in_channels=in_channels, num_classes=out)
        self.loss_weight = loss_weight
        self.task_loss = task_loss
        self.dense = dense
        self.FUSION = dict(logits='tile' if dense else 'mean')

    def forward(self, feat: torch.Tensor, out_size: Tuple[int, int]) -> Preds:
        logits = self.classifier(feat)
        if self.dense:
            logits = F.interpolate(logits, size=tuple(out_size), mode='bilinear',
                                   align_corners=True)
        return dict(logits=logits)

    def task_losses(self, preds: Preds, targets: LocalTargets) -> Dict[str, torch.Tensor]:
        logits = preds['logits']
        if self.dense:
            loss = F.cross_entropy(logits, targets.seg, ignore_index=targets.ignore_index)
            return dict(loss_seg=loss)
        if self.task_loss == 'contrast':
            return dict(loss_contrast=supcon_loss(logits, targets.labels))
        return dict(loss_cls=cross_entropy(logits, targets.labels))

    def loss(self, preds: Preds, targets: LocalTargets) -> Dict[str, torch.Tensor]:
        return {k: self.loss_weight * v for k, v in self.task_losses(preds, targets).items()}


class ReconstructionMixin:
    """InfoPro's reconstruction term on top of a task head (a ``LocalHead``
    whose ``loss_weight`` is lambda_task): lambda_task * L_task +
    lambda_recon * BCE(w(h), image). The task branch is skipped where
    lambda_task is 0; the reconstruction tiles under PFF."""

    def _init_decoder(self, decoder: dict, in_channels: int, recon_weight: float) -> None:
        self.decoder = _build(decoder, in_channels=in_channels)
        self.recon_weight = recon_weight
        self.FUSION = dict(self.FUSION, recon='tile')

    def forward(self, feat: torch.Tensor, out_size: Tuple[int, int]) -> Preds:
        preds = super().forward(feat, out_size) if self.loss_weight else {}
        preds['recon'] = self.decoder(feat, out_size)
        return preds

    def loss(self, preds: Preds, targets: LocalTargets) -> Dict[str, torch.Tensor]:
        losses = super().loss(preds, targets) if self.loss_weight else {}
        # a decoder may sum per-region losses (the authors' quadrant PFF)
        scale = getattr(self.decoder, 'loss_scale', 1.)
        losses['loss_recon'] = scale * self.recon_weight * reconstruction_loss(
            preds['recon'], targets.image01)
        return losses


@MODELS.register_module()
class InfoProHead(ReconstructionMixin, ClassifierHead):
    """InfoPro: lambda_task * L_task(psi(h)) + lambda_recon * BCE(w(h), image)."""

    def __init__(self, in_channels: int, num_classes: int, classifier: dict,
                 decoder: dict, recon_weight: float, task_weight: float,
                 task_loss: str = 'softmax', feature_dim: int = 128,
                 dense: bool = False) -> None:
        super().__init__(in_channels, num_classes, classifier, task_weight,
                         task_loss, feature_dim, dense)
        self._init_decoder(decoder, in_channels, recon_weight)


@MODELS.register_module()
class PredSimHead(LocalHead):
    """PredSim: (1-beta) CE(pred(h)) + beta MSE(S(conv(h)), S(onehot(y)))."""
    FUSION = dict(logits='mean', sim='mean')

    def __init__(self, in_channels: int, num_classes: int, beta: float = 0.99,
                 dim_in_decoder: int = 4096,
                 spatial: Optional[Tuple[int, int]] = None,
                 loss_weight: float = 1.0) -> None:
        super().__init__()
        self.net = MODELS.build(dict(type='PredSimNet', in_channels=in_channels,
                                     num_classes=num_classes,
                                     dim_in_decoder=dim_in_decoder,
                                     spatial=tuple(spatial or (8, 8))))
        self.beta = beta
        self.num_classes = num_classes
        self.loss_weight = loss_weight

    def forward(self, feat: torch.Tensor, out_size: Tuple[int, int]) -> Preds:
        logits, sim = self.net(feat)
        return dict(logits=logits, sim=sim)

    def loss(self, preds: Preds, targets: LocalTargets) -> Dict[str, torch.Tensor]:
        losses = predsim_loss(preds['logits'], preds['sim'], targets.labels,
                              self.num_classes, self.beta)
        return {k: self.loss_weight * v for k, v in losses.items()}
