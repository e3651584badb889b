"""Local learning methods: each builds the local head of every module.

A method knows its loss and its per-module hyper-parameters (InfoPro's
lambda schedules over the module index); the engine tells it the module's
feature (channels, map size) and the task, so users never type channels.
"""
from dataclasses import dataclass
from typing import Optional, Tuple

import torch.nn as nn
from mmengine.config import ConfigDict

from mmlocal.registry import LOCAL_METHODS, MODELS


@dataclass
class FeatureInfo:
    """What a local head receives: a (B, C, H, W) map (ViT tokens are
    reshaped to their patch grid, ``tokens=True``). ``stride``: input pixels
    per feature pixel (the ViT patch size)."""
    channels: int
    spatial: Tuple[int, int]
    stride: int = 1
    tokens: bool = False


@dataclass
class TaskInfo:
    task: str  # 'classification' | 'segmentation' | 'detection'
    num_classes: int


#: Tasks whose local head is not psi on labels: the head type each method's
#: head becomes (same arguments, plus the feature's stride; ``classifier``
#: then names the task's dense head).
TASK_HEADS = {
    'detection': dict(ClassifierHead='DetClassifierHead', InfoProHead='DetInfoProHead'),
}


def build_task_head(cfg: dict, task: TaskInfo, feat: FeatureInfo) -> nn.Module:
    types = TASK_HEADS.get(task.task)
    if types is not None:
        cfg = dict(cfg, type=types[cfg['type']], stride=feat.stride)
        cfg.pop('dense', None)
    return MODELS.build(cfg)


def default_classifier(task: TaskInfo, feat: FeatureInfo) -> dict:
    """psi by task: InfoPro's CIFAR 1c2f for small classification features,
    its ImageNet psi for wide ones, its ViT psi for tokens, its segmentation
    psi for seg; for box detection mmdet's RetinaHead on the feature's level
    (two stacked convs: a light head)."""
    if task.task == 'detection':
        return dict(type='RetinaHead', stacked_convs=2)
    if task.task == 'segmentation':
        return dict(type='SegAuxClassifier')
    if feat.tokens:
        return dict(type='ViTAuxClassifier')
    if feat.channels > 256:
        return dict(type='ImageNetAuxClassifier')
    return dict(type='ConvAuxClassifier', arch='1c2f')


def default_decoder(task: TaskInfo, feat: FeatureInfo) -> dict:
    if feat.tokens and task.task != 'segmentation':
        return dict(type='PatchReconDecoder', patch_size=feat.stride)
    if task.task in ('segmentation', 'detection') or feat.channels > 256:
        return dict(type='UpsampleDecoder')
    return dict(type='ReconDecoder')


def linear_schedule(ends: Tuple[float, float], index: int, num_local: int) -> float:
    """InfoPro's lambda(m) = a (1 - r) + b r with r = m / (K - 2) (0 if K = 2)."""
    a, b = ends
    r = index / (num_local - 1) if num_local > 1 else 0.
    return a * (1 - r) + b * r


class LocalMethod:
    """Builds the local head of module ``index`` (0-based, of ``num_local``)."""

    def build_head(self, index: int, num_local: int, feat: FeatureInfo,
                   task: TaskInfo) -> nn.Module:
        raise NotImplementedError


def _cfg(cfg: Optional[dict], default: dict) -> dict:
    return ConfigDict(default if cfg is None else cfg)


@LOCAL_METHODS.register_module()
class DGL(LocalMethod):
    """DGL (Belilovsky et al.): each module trained by psi + CE alone.

    ``classifier`` picks psi: ``ConvAuxClassifier`` with ``arch`` 0c1f ...
    2c2f (InfoPro's architectures) or ``DGLMLPSRClassifier`` (original DGL).
    """

    def __init__(self, classifier: Optional[dict] = None, loss_weight: float = 1.0,
                 task_loss: str = 'softmax') -> None:
        self.classifier = classifier
        self.loss_weight = loss_weight
        self.task_loss = task_loss

    def build_head(self, index, num_local, feat, task):
        return build_task_head(dict(
            type='ClassifierHead', in_channels=feat.channels,
            num_classes=task.num_classes,
            classifier=_cfg(self.classifier, default_classifier(task, feat)),
            loss_weight=self.loss_weight, task_loss=self.task_loss,
            dense=task.task == 'segmentation'), task, feat)


@LOCAL_METHODS.register_module()
class InfoPro(LocalMethod):
    """InfoPro (Wang et al., ICLR 2021): psi + reconstruction decoder w.

    ``recon_weights`` = (ixx_1, ixx_2) and ``task_weights`` = (ixy_1, ixy_2)
    are the ends of the linear schedules over module index
    (ALGORITHMS.md §2.1-2.2). ``task_loss``: 'softmax' (CE) or 'contrast'
    (SupCon on a 128-d projection).
    """

    def __init__(self, recon_weights: Tuple[float, float] = (5., 0.),
                 task_weights: Tuple[float, float] = (0.5, 0.),
                 task_loss: str = 'softmax', classifier: Optional[dict] = None,
                 decoder: Optional[dict] = None, feature_dim: int = 128) -> None:
        self.recon_weights = tuple(recon_weights)
        self.task_weights = tuple(task_weights)
        self.task_loss = task_loss
        self.classifier = classifier
        self.decoder = decoder
        self.feature_dim = feature_dim

    def build_head(self, index, num_local, feat, task):
        return build_task_head(dict(
            type='InfoProHead', in_channels=feat.channels,
            num_classes=task.num_classes,
            classifier=_cfg(self.classifier, default_classifier(task, feat)),
            decoder=_cfg(self.decoder, default_decoder(task, feat)),
            recon_weight=linear_schedule(self.recon_weights, index, num_local),
            task_weight=linear_schedule(self.task_weights, index, num_local),
            task_loss=self.task_loss, feature_dim=self.feature_dim,
            dense=task.task == 'segmentation'), task, feat)


@LOCAL_METHODS.register_module()
class PredSim(LocalMethod):
    """PredSim (Nokland & Eidnes 2019): prediction + similarity matching."""

    def __init__(self, beta: float = 0.99, dim_in_decoder: int = 4096,
                 loss_weight: float = 1.0) -> None:
        self.beta = beta
        self.dim_in_decoder = dim_in_decoder
        self.loss_weight = loss_weight

    def build_head(self, index, num_local, feat, task):
        if task.task in ('segmentation', 'detection'):
            raise ValueError('PredSim is defined for classification targets only; '
                             f"use method=dict(type='DGL') or 'InfoPro' for {task.task}")
        return MODELS.build(dict(
            type='PredSimHead', in_channels=feat.channels,
            num_classes=task.num_classes, beta=self.beta,
            dim_in_decoder=self.dim_in_decoder, spatial=feat.spatial,
            loss_weight=self.loss_weight))


def build_method(cfg) -> LocalMethod:
    args = dict(ConfigDict(cfg))
    name = args.pop('type', None)
    cls = LOCAL_METHODS.module_dict.get(name)  # direct: independent of the default scope
    if cls is None:
        raise ValueError(f'unknown local method {name!r}: choose one of '
                         f'{sorted(LOCAL_METHODS.module_dict)}')
    return cls(**args)
