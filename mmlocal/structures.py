"""The contract between mmlocal's parts: what flows from the engine to the heads.

Everything here is plain data or a protocol and imports nothing of mmlocal
but ``utils`` (the floor below everything), so heads (``mmlocal.models``)
are typed against it without importing the engine (``mmlocal.local``), and
the engine without importing the heads.

* ``FeatureInfo``: what the probe learned about one boundary output; heads
  take their channels and map size from it, never from the user.
* ``TaskInfo``: the task the local heads serve.
* ``LocalTargets``: the targets of one training batch, read after the data
  preprocessor, shared by every local head of that batch.
* ``LocalHeadProtocol``: what the engine calls on a head.
"""
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Protocol, Tuple, runtime_checkable

import torch
import torch.nn as nn

from mmlocal.utils.mmengine_adapter import normalizes_inputs

#: Named predictions of a local head (``'logits'``, ``'recon'``, ...).
Preds = Dict[str, torch.Tensor]


@dataclass(frozen=True)
class FeatureInfo:
    """A boundary output as a local head sees it: a (B, C, H, W) map (ViT
    tokens are reshaped to their patch grid, ``tokens=True``). ``stride``:
    input pixels per feature pixel."""
    channels: int
    spatial: Tuple[int, int]
    stride: int = 1
    tokens: bool = False


@dataclass(frozen=True)
class TaskInfo:
    """``task``: 'classification' | 'segmentation' | 'detection'."""
    task: str
    num_classes: int


@dataclass
class LocalTargets:
    """Targets of one training batch, shared by every local head.

    Read after the model's data preprocessor, so batch augmentations (Mixup,
    CutMix) give local heads the labels the task head gets, and the
    reconstruction target is the very image the backbone saw.
    """
    inputs: torch.Tensor
    preprocessor: Optional[nn.Module] = None
    labels: Optional[torch.Tensor] = None  # (B,) hard or (B, C) soft
    seg: Optional[torch.Tensor] = None  # (B, H, W), ignore_index = unlabelled
    ignore_index: int = 255
    instances: Optional[List[Any]] = None  # mmdet InstanceData per image (boxes, labels)
    metas: Optional[List[dict]] = None  # per-image meta information (mmdet img_shape, ...)
    _image01: Optional[torch.Tensor] = field(default=None, repr=False)

    @property
    def image01(self) -> torch.Tensor:
        """The input image de-normalised to [0, 1], the InfoPro BCE target."""
        if self._image01 is None:
            x = self.inputs.detach().float()
            pre = self.preprocessor
            if pre is not None and normalizes_inputs(pre):
                x = x * pre.std.float() + pre.mean.float()
            self._image01 = (x / 255.).clamp(0, 1)
        return self._image01


@runtime_checkable
class LocalHeadProtocol(Protocol):
    """A module's local supervision: features to predictions to losses.

    ``forward`` and ``loss`` are apart so PFF can run a head on patches and
    fuse the predictions before the loss; ``FUSION`` says how each named
    prediction fuses ('mean' for vectors, 'tile' for dense maps).
    """
    FUSION: Dict[str, str]

    def __call__(self, feat: torch.Tensor, out_size: Tuple[int, int]) -> Preds:
        ...

    def loss(self, preds: Preds, targets: LocalTargets) -> Dict[str, torch.Tensor]:
        ...
