"""Local learning methods: each builds one local head.

A method knows its loss and the ends of its schedules (InfoPro's lambdas as
a function of the position r); which module gets which r, which heads exist
and where their losses stop is the plan's (``plan.py``). The engine tells a
method the module's feature (channels, map size) and the task, so users never
type channels.
"""
from typing import Dict, Optional, Tuple

import torch.nn as nn
from mmengine.config import ConfigDict

from mmlocal.registry import LOCAL_METHODS, MODELS
from mmlocal.structures import FeatureInfo, TaskInfo
from .head_runner import pff_strategy
from .tasks import local_task


def build_task_head(cfg: dict, task: TaskInfo, feat: FeatureInfo) -> nn.Module:
    """A method's head as the task builds it (``tasks.py``)."""
    return MODELS.build(local_task(task).head(cfg, feat))


def default_classifier(task: TaskInfo, feat: FeatureInfo) -> dict:
    """psi: the task's default for this feature (``LocalTask.classifier``)."""
    return local_task(task).classifier(feat)


def default_decoder(task: TaskInfo, feat: FeatureInfo) -> dict:
    """w: the task's default for this feature (``LocalTask.decoder``)."""
    return local_task(task).decoder(feat)


def linear_schedule(ends: Tuple[float, float], r: float) -> float:
    """InfoPro's lambda = a (1 - r) + b r (ALGORITHMS.md §2.1); the plan
    (``plan.py``) decides r for each module."""
    a, b = ends
    return a * (1 - r) + b * r


Pff = Tuple[str, int]  # (variant, n): ('', 1) off; see plan.HeadPlan.pff


class LocalMethod:
    """Builds one local head from the module's feature, the task and the
    loss weights the plan gives it (after any schedule).

    ``scheduled``: the loss weights depend on the schedule position r;
    ``has_decoder``: the head reconstructs the image (PFF's 'quadrant' and
    'output' variants patch that reconstruction).
    """
    scheduled = False
    has_decoder = False

    def loss_weights(self, r: float) -> Dict[str, float]:
        """The weights of the head's loss terms at schedule position r in [0, 1]."""
        raise NotImplementedError

    def build_head(self, feat: FeatureInfo, task: TaskInfo,
                   loss_weights: Dict[str, float], pff: Pff = ('', 1)) -> nn.Module:
        raise NotImplementedError


def _cfg(cfg: Optional[dict], default: dict) -> dict:
    return ConfigDict(default if cfg is None else cfg)


@LOCAL_METHODS.register_module()
class DGL(LocalMethod):
    """DGL (Belilovsky et al.): each module trained by psi + CE alone.

    ``classifier`` picks psi: ``ConvAuxClassifier`` with ``arch`` 0c1f ...
    2c2f (InfoPro's architectures), ``DGLMLPSRClassifier`` (original DGL) or
    ``AuxDGLClassifier`` (MLAAN's k=3 code).
    """

    def __init__(self, classifier: Optional[dict] = None, loss_weight: float = 1.0,
                 task_loss: str = 'softmax') -> None:
        self.classifier = classifier
        self.loss_weight = loss_weight
        self.task_loss = task_loss

    def loss_weights(self, r):
        return {'cls': float(self.loss_weight)}

    def build_head(self, feat, task, loss_weights, pff=('', 1)):
        return build_task_head(dict(
            type='ClassifierHead', in_channels=feat.channels,
            num_classes=task.num_classes,
            classifier=_cfg(self.classifier, default_classifier(task, feat)),
            loss_weight=loss_weights['cls'], task_loss=self.task_loss), task, feat)


@LOCAL_METHODS.register_module()
class InfoPro(LocalMethod):
    """InfoPro (Wang et al., ICLR 2021): psi + reconstruction decoder w.

    ``recon_weights`` = (ixx_1, ixx_2) and ``task_weights`` = (ixy_1, ixy_2)
    are the ends of the linear schedules lambda = a (1 - r) + b r
    (ALGORITHMS.md §2.1-2.2); the plan gives r for each module. The defaults
    are InfoPro's own R32 K=16 values (5 -> 0.2, 0.05 -> 0.5), non-zero at
    both ends; HPFF/MLAAN's (5 -> 0, 0.5 -> 0) need their segment indexing
    (``stem='merged'``), or the last local module gets no loss.
    ``task_loss``: 'softmax' (CE) or 'contrast' (SupCon on a 128-d projection).
    """
    scheduled = True
    has_decoder = True

    def __init__(self, recon_weights: Tuple[float, float] = (5., 0.2),
                 task_weights: Tuple[float, float] = (0.05, 0.5),
                 task_loss: str = 'softmax', classifier: Optional[dict] = None,
                 decoder: Optional[dict] = None, feature_dim: int = 128) -> None:
        self.recon_weights = tuple(recon_weights)
        self.task_weights = tuple(task_weights)
        self.task_loss = task_loss
        self.classifier = classifier
        self.decoder = decoder
        self.feature_dim = feature_dim

    def loss_weights(self, r):
        return {'recon': float(linear_schedule(self.recon_weights, r)),
                'task': float(linear_schedule(self.task_weights, r))}

    def build_head(self, feat, task, loss_weights, pff=('', 1)):
        variant, n = pff  # the code's variants patch the decoder (``PFF_VARIANTS``)
        decoder = pff_strategy(variant).decoder(
            _cfg(self.decoder, default_decoder(task, feat)), n)
        return build_task_head(dict(
            type='InfoProHead', in_channels=feat.channels,
            num_classes=task.num_classes,
            classifier=_cfg(self.classifier, default_classifier(task, feat)),
            decoder=decoder,
            recon_weight=loss_weights['recon'], task_weight=loss_weights['task'],
            task_loss=self.task_loss, feature_dim=self.feature_dim), task, feat)


@LOCAL_METHODS.register_module()
class PredSim(LocalMethod):
    """PredSim (Nokland & Eidnes 2019): prediction + similarity matching."""

    def __init__(self, beta: float = 0.99, dim_in_decoder: int = 4096,
                 loss_weight: float = 1.0) -> None:
        self.beta = beta
        self.dim_in_decoder = dim_in_decoder
        self.loss_weight = loss_weight

    def loss_weights(self, r):
        return {'predsim': float(self.loss_weight)}

    def build_head(self, feat, task, loss_weights, pff=('', 1)):
        if not local_task(task).image_labels:
            raise ValueError('PredSim is defined for classification targets only; '
                             f"use method=dict(type='DGL') or 'InfoPro' for {task.task}")
        return MODELS.build(dict(
            type='PredSimHead', in_channels=feat.channels,
            num_classes=task.num_classes, beta=self.beta,
            dim_in_decoder=self.dim_in_decoder, spatial=feat.spatial,
            loss_weight=loss_weights['predsim']))


def build_method(cfg) -> LocalMethod:
    args = dict(ConfigDict(cfg))
    name = args.pop('type', None)
    cls = LOCAL_METHODS.module_dict.get(name)  # direct: independent of the default scope
    if cls is None:
        raise ValueError(f'unknown local method {name!r}: choose one of '
                         f'{sorted(LOCAL_METHODS.module_dict)}')
    return cls(**args)
