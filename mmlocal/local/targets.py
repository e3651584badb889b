"""Targets of the local losses, read after the model's data preprocessor.

Reading them there (not from the dataset) means batch augmentations such as
Mixup/CutMix give the local heads the same soft labels as the task head, and
the reconstruction target is the very image the backbone saw.
"""
from typing import Optional, Sequence

import torch
import torch.nn as nn

from mmlocal.registry import TARGET_ADAPTERS
from mmlocal.structures import LocalTargets


class TargetAdapter:
    """Reads a task's targets from data samples; knows its number of classes."""
    task = 'classification'

    def num_classes(self, model: nn.Module) -> int:
        raise NotImplementedError

    def __call__(self, inputs: torch.Tensor, data_samples: Sequence,
                 preprocessor: Optional[nn.Module]) -> LocalTargets:
        raise NotImplementedError


@TARGET_ADAPTERS.register_module(name=['ImageClassifier', 'classification'])
class ClassificationTargets(TargetAdapter):
    """mmpretrain: ``gt_score`` (soft, after Mixup/CutMix) or ``gt_label``."""

    def num_classes(self, model: nn.Module) -> int:
        return model.head.num_classes

    def __call__(self, inputs, data_samples, preprocessor) -> LocalTargets:
        if data_samples and 'gt_score' in data_samples[0]:
            labels = torch.stack([s.gt_score for s in data_samples])
        else:
            labels = torch.cat([s.gt_label for s in data_samples])
        return LocalTargets(inputs, preprocessor, labels=labels.to(inputs.device))


@TARGET_ADAPTERS.register_module(name=['EncoderDecoder', 'segmentation'])
class SegmentationTargets(TargetAdapter):
    """mmseg: ``gt_sem_seg`` maps, padded with the ignore index."""
    task = 'segmentation'

    def num_classes(self, model: nn.Module) -> int:
        return model.decode_head.num_classes

    def __call__(self, inputs, data_samples, preprocessor) -> LocalTargets:
        seg = torch.stack([s.gt_sem_seg.data for s in data_samples]).squeeze(1).long()
        ignore = 255
        return LocalTargets(inputs, preprocessor, seg=seg.to(inputs.device),
                            ignore_index=ignore)


@TARGET_ADAPTERS.register_module(name='detection-multihot')
class DetectionTargets(TargetAdapter):
    """mmdet: image-level multi-hot labels of the boxes' classes (soft labels
    normalised to sum 1), a classification signal for local heads of a
    detector backbone (``local.task='detection-multihot'``; the default for
    detectors is the box-aware ``det_targets.BoxTargets``)."""

    def num_classes(self, model: nn.Module) -> int:
        for path in ('roi_head.bbox_head', 'bbox_head'):
            head = model
            for name in path.split('.'):
                head = getattr(head, name, None)
            if head is not None and hasattr(head, 'num_classes'):
                return head.num_classes
        raise ValueError('cannot find num_classes on this detector: set '
                         'local.num_classes in the config')

    def __call__(self, inputs, data_samples, preprocessor) -> LocalTargets:
        n = self.classes
        labels = torch.zeros(len(data_samples), n, device=inputs.device)
        for i, s in enumerate(data_samples):
            cls = s.gt_instances.labels.to(inputs.device)
            if cls.numel():
                labels[i, cls] = 1.
        labels = labels / labels.sum(1, keepdim=True).clamp(min=1)
        return LocalTargets(inputs, preprocessor, labels=labels)


def build_target_adapter(model: nn.Module, task: Optional[str] = None) -> TargetAdapter:
    """The adapter for ``task`` or for the model's class (walking its MRO)."""
    names = [task] if task else [c.__name__ for c in type(model).__mro__]
    for name in names:
        cls = TARGET_ADAPTERS.get(name)
        if cls is not None:
            adapter = cls()
            break
    else:
        raise ValueError(
            f'mmlocal does not know how to read targets for {type(model).__name__}; '
            f"set local.task to one of {sorted(set(TARGET_ADAPTERS.module_dict.keys()))}")
    return adapter
