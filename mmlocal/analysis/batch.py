"""A synthetic training batch shaped like a task's data, for measurements.

``split='memory'`` and ``local.memory_budget`` measure one training step
when the optim wrapper is built, before any data is loaded: random uint8
images of the training crop and random targets of the model's task
(labels, segmentation maps or boxes), through the model's own data
preprocessor. Memory does not depend on the pixel values; it depends on the
batch size, the crop and, for boxes, little on their number.
``mmlocal.apis.synthetic_batch`` draws its samples here too.
"""
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import torch
import torch.nn as nn

from mmlocal.local.config import LocalConfigError

#: random boxes per synthetic detection image
BOXES_PER_IMAGE = 3

SampleMaker = Callable[[int, int, Tuple[int, int], torch.Generator], list]


def image_meta(hw: Sequence[int]) -> dict:
    """The metainfo the toolboxes' packers give an unscaled, unflipped image."""
    h, w = hw
    return dict(img_shape=(h, w), ori_shape=(h, w), pad_shape=(h, w),
                scale_factor=(1.0, 1.0), flip=False, flip_direction=None)


def classification_samples(num_classes: int, batch_size: int, hw: Tuple[int, int],
                           generator: torch.Generator) -> list:
    from mmpretrain.structures import DataSample
    return [
        DataSample(metainfo=image_meta(hw)).set_gt_label(
            int(torch.randint(0, num_classes, (1, ), generator=generator)))
        for _ in range(batch_size)
    ]


def segmentation_samples(num_classes: int, batch_size: int, hw: Tuple[int, int],
                         generator: torch.Generator) -> list:
    from mmengine.structures import PixelData
    from mmseg.structures import SegDataSample
    samples = []
    for _ in range(batch_size):
        sample = SegDataSample(metainfo=dict(image_meta(hw), reduce_zero_label=False))
        sample.gt_sem_seg = PixelData(data=torch.randint(
            0, num_classes, (1, *hw), dtype=torch.int64, generator=generator))
        samples.append(sample)
    return samples


def detection_samples(num_classes: int, batch_size: int, hw: Tuple[int, int],
                      generator: torch.Generator) -> list:
    """Boxes of 10-30% of the image side at random places, random labels."""
    from mmdet.structures import DetDataSample
    from mmengine.structures import InstanceData
    h, w = hw
    side = torch.tensor([w, h], dtype=torch.float32)
    n = BOXES_PER_IMAGE
    samples = []
    for _ in range(batch_size):
        wh = (0.1 + 0.2 * torch.rand(n, 2, generator=generator)) * side
        xy = torch.rand(n, 2, generator=generator) * (side - wh)
        sample = DetDataSample(metainfo=image_meta(hw))
        sample.gt_instances = InstanceData(
            bboxes=torch.cat([xy, xy + wh], dim=1),
            labels=torch.randint(0, num_classes, (n, ), generator=generator))
        sample.ignored_instances = InstanceData(
            bboxes=torch.zeros(0, 4), labels=torch.zeros(0, dtype=torch.int64))
        samples.append(sample)
    return samples


#: a target adapter's ``task`` -> the samples of that task
SAMPLES: Dict[str, SampleMaker] = {
    'classification': classification_samples,
    'segmentation': segmentation_samples,
    'detection': detection_samples,
    'detection-multihot': detection_samples,
}


def training_input_size(model: nn.Module, backbone: nn.Module,
                        given: Optional[Sequence[int]] = None) -> Tuple[int, int]:
    """(H, W) of the training crop: ``given``, else the crop the model itself
    pads to (mmseg's preprocessor ``size``), else the backbone's ``img_size``."""
    if given is not None:
        return tuple(given)
    size = getattr(getattr(model, 'data_preprocessor', None), 'size', None)
    if size is None:
        size = getattr(backbone, 'img_size', None)
    if size is None:
        raise LocalConfigError(
            'local.memory_batch.input_size is needed: the model does not say which crop it '
            'trains on; give the (H, W) of the training pipeline, e.g. '
            'memory_batch=dict(batch_size=64, input_size=(32, 32))')
    return (size, size) if isinstance(size, int) else tuple(size)


def synthetic_training_batch(model: nn.Module, task: str, num_classes: int, batch_size: int,
                             hw: Tuple[int, int], seed: int = 0) -> dict:
    """One preprocessed batch (``inputs``, ``data_samples``) of random images
    and targets of ``task``, on the model's device."""
    maker = SAMPLES.get(task)
    if maker is None:
        raise LocalConfigError(f'split=\'memory\' cannot synthesise targets of task {task!r}: '
                               f'it knows {sorted(SAMPLES)}; give local.boundaries')
    g = torch.Generator().manual_seed(seed)
    inputs: List[torch.Tensor] = [
        torch.randint(0, 256, (3, *hw), dtype=torch.uint8, generator=g)
        for _ in range(batch_size)
    ]
    samples = maker(num_classes, batch_size, hw, g)
    return model.data_preprocessor(dict(inputs=inputs, data_samples=samples), True)
