"""Box-aware local supervision of detector backbones, built from mmdet parts.

A module's local head is one of mmdet's own dense heads (``RetinaHead`` by
default, ``RPNHead``, ``FCOSHead``) run on a single pyramid level: the
module's feature at its stride, as MAN++ supervises each module on the level
that matches its stride. The head's config, assigner, sampler, box coder and
losses are mmdet's model-zoo ones, read from mmdet's own configs; the loss is
the head's own ``loss_by_feat``. Only the level's priors are set here, from
the stride (input pixels per feature pixel), so the user types no channels
and no strides:

* anchor heads keep their zoo level rule (RetinaNet: anchors of
  4s * 2^(0, 1/3, 2/3); RPN: 8s), one level of stride ``s``; objects larger
  than the level's anchors are still matched to their best anchor (the zoo
  assigners' low-quality matches);
* FCOS regresses every object on this one level (regression range
  (-1, inf)), with the zoo's centre sampling.
"""
import copy
import functools
import logging
from typing import Dict, List, Tuple

import torch
import torch.nn as nn
from mmengine.logging import MMLogger

from mmlocal.registry import DENSE_HEAD_LEVELS, MODELS
from .local_heads import LocalHead, Preds, ReconstructionMixin

INF = 1e8


@functools.lru_cache(maxsize=None)
def _zoo_model(config: str):
    from mmengine.hub import get_config
    return get_config(config).model


def _zoo(config: str, *keys: str) -> dict:
    """A (deep-copied) part of an mmdet model-zoo config's model."""
    node = _zoo_model(config)
    for k in keys:
        node = node[k]
    return copy.deepcopy(node.to_dict() if hasattr(node, 'to_dict') else node)


# DENSE_HEAD_LEVELS: dense head type -> function(stride) giving the head's
# zoo config for one level of that stride, its train_cfg, its output names
# and whether it is class-agnostic.
@DENSE_HEAD_LEVELS.register_module(name='RetinaHead')
def retina_level(stride: int) -> dict:
    cfg = 'mmdet::_base_/models/retinanet_r50_fpn.py'
    head = _zoo(cfg, 'bbox_head')
    head['anchor_generator']['strides'] = [stride]
    return dict(head=head, train_cfg=_zoo(cfg, 'train_cfg'),
                outputs=('cls_score', 'bbox_pred'), agnostic=False)


@DENSE_HEAD_LEVELS.register_module(name='RPNHead')
def rpn_level(stride: int) -> dict:
    cfg = 'mmdet::_base_/models/faster-rcnn_r50_fpn.py'
    head = _zoo(cfg, 'rpn_head')
    head['anchor_generator']['strides'] = [stride]
    return dict(head=head, train_cfg=_zoo(cfg, 'train_cfg', 'rpn'),
                outputs=('cls_score', 'bbox_pred'), agnostic=True)


@DENSE_HEAD_LEVELS.register_module(name='FCOSHead')
def fcos_level(stride: int) -> dict:
    cfg = 'mmdet::fcos/fcos_r50-caffe_fpn_gn-head-center-normbbox-centeronreg-giou_1x_coco.py'
    head = _zoo(cfg, 'bbox_head')
    head.update(strides=[stride], regress_ranges=((-1, INF),))
    # FCOS assigns by location and range: its zoo model has no train_cfg
    return dict(head=head, train_cfg=_zoo_model(cfg).get('train_cfg'),
                outputs=('cls_score', 'bbox_pred', 'centerness'), agnostic=False)


def build_dense_head(cfg: dict, in_channels: int, num_classes: int,
                     stride: int) -> Tuple[nn.Module, dict]:
    """mmdet's dense head ``cfg['type']`` on one level of ``stride``; keys of
    ``cfg`` other than ``type`` override the zoo config (e.g. ``stacked_convs``)."""
    from mmdet.registry import MODELS as MMDET_MODELS
    cfg = dict(cfg)
    name = cfg.pop('type', 'RetinaHead')
    if name not in DENSE_HEAD_LEVELS.module_dict:
        raise ValueError(
            f'no single-level rule for dense head {name!r}: choose one of '
            f'{sorted(DENSE_HEAD_LEVELS.module_dict)} (register another in '
            'mmlocal.registry.DENSE_HEAD_LEVELS), or train on image-level multi-hot labels '
            "with local.task='detection-multihot'")
    rule = DENSE_HEAD_LEVELS.module_dict[name](stride)
    head = rule['head']
    head.update(cfg)
    head.update(type=name, in_channels=in_channels, train_cfg=rule['train_cfg'],
                test_cfg=None)
    if rule['agnostic']:
        head.pop('num_classes', None)
    else:
        head['num_classes'] = num_classes
    from mmengine.registry import DefaultScope
    with DefaultScope.overwrite_default_scope('mmdet'):  # its losses, assigners, coders too
        module = MMDET_MODELS.build(head)
    # the learner builds heads after the Runner's weight init: initialise now
    # (zoo init: normal 0.01, focal-loss classifier bias prior 0.01), without
    # mmengine's per-parameter report on the console
    logger = MMLogger.get_current_instance()
    level = logger.level
    logger.setLevel(logging.WARNING)
    try:
        module.init_weights()
    finally:
        logger.setLevel(level)
    return module, rule


@MODELS.register_module()
class DetClassifierHead(LocalHead):
    """DGL on boxes: an mmdet dense head on the module's feature, its own
    ``loss_by_feat`` against the batch's ``gt_instances``.

    ``classifier`` names the dense head (``RetinaHead``, ``RPNHead``,
    ``FCOSHead``) and overrides its zoo config; ``stride`` comes from the
    learner's probe. Under PFF each patch's dense outputs are placed in its
    region of the feature grid and the loss is taken on the fused maps.
    """

    def __init__(self, in_channels: int, num_classes: int, classifier: dict,
                 stride: int, loss_weight: float = 1.0, task_loss: str = 'softmax',
                 feature_dim: int = 128) -> None:
        super().__init__()
        if task_loss != 'softmax':
            raise ValueError(f'task_loss={task_loss!r} is not defined for box detection: '
                             "the dense head's own losses are used; drop task_loss")
        self.dense_head, rule = build_dense_head(classifier, in_channels, num_classes, stride)
        self.outputs: Tuple[str, ...] = tuple(rule['outputs'])
        self.agnostic = bool(rule['agnostic'])
        self.stride = stride
        self.loss_weight = loss_weight
        self.FUSION = {name: 'grid' for name in self.outputs}

    def forward(self, feat: torch.Tensor, out_size: Tuple[int, int]) -> Preds:
        outs = self.dense_head((feat, ))  # one level: lists of length 1
        return {name: out[0] for name, out in zip(self.outputs, outs)}

    def _instances(self, targets) -> List:
        if targets.instances is None:
            raise ValueError('box-aware local heads need gt_instances: use the detection '
                             "target adapter (local.task='detection')")
        if not self.agnostic:
            return targets.instances
        out = []
        for inst in targets.instances:  # RPN: one class, as TwoStageDetector.loss
            inst = inst.clone()
            inst.labels = torch.zeros_like(inst.labels)
            out.append(inst)
        return out

    def task_losses(self, preds: Preds, targets) -> Dict[str, torch.Tensor]:
        levels = [[preds[name]] for name in self.outputs]
        losses = self.dense_head.loss_by_feat(*levels, self._instances(targets),
                                              targets.metas)
        return {k: sum(v) if isinstance(v, (list, tuple)) else v for k, v in losses.items()}

    def loss(self, preds: Preds, targets) -> Dict[str, torch.Tensor]:
        return {k: self.loss_weight * v for k, v in self.task_losses(preds, targets).items()}


@MODELS.register_module()
class DetInfoProHead(ReconstructionMixin, DetClassifierHead):
    """InfoPro on boxes: lambda_task * dense-head loss + lambda_recon *
    BCE(w(h), image) (``ReconstructionMixin``, as ``InfoProHead``)."""

    def __init__(self, in_channels: int, num_classes: int, classifier: dict,
                 decoder: dict, recon_weight: float, task_weight: float, stride: int,
                 task_loss: str = 'softmax', feature_dim: int = 128) -> None:
        super().__init__(in_channels, num_classes, classifier, stride, task_weight,
                         task_loss, feature_dim)
        self._init_decoder(decoder, in_channels, recon_weight)
