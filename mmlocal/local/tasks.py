"""What each task supplies to the local heads of every method.

A method (``methods.py``) knows its loss terms; the task (the target
adapter's ``task``: classification, segmentation, box detection) knows what
a local head of that task looks like: its default psi and reconstruction
decoder for a feature, the head class each method's head becomes, and
whether its predictions are per pixel. One class per task in
``LOCAL_TASKS``; adding a task is registering one here and a target
adapter (``targets.py``), no branch elsewhere.
"""
from typing import Dict

from mmlocal.registry import LOCAL_TASKS
from mmlocal.structures import FeatureInfo, TaskInfo


class LocalTask:
    """Defaults of one task's local heads.

    ``dense``: predictions per pixel (the heads take ``dense=True``);
    ``image_labels``: targets are one label vector per image (PredSim's
    similarity matching needs them); ``head_types``: the method's head type
    -> this task's (built with the same arguments plus the feature's
    stride; ``classifier`` then names the task's own dense head).
    """
    dense = False
    image_labels = True
    head_types: Dict[str, str] = {}

    def classifier(self, feat: FeatureInfo) -> dict:
        """psi: InfoPro's CIFAR 1c2f for small features, its ImageNet psi
        for wide ones, its ViT psi for tokens."""
        if feat.tokens:
            return dict(type='ViTAuxClassifier')
        if feat.channels > 256:
            return dict(type='ImageNetAuxClassifier')
        return dict(type='ConvAuxClassifier', arch='1c2f')

    def decoder(self, feat: FeatureInfo) -> dict:
        """InfoPro's reconstruction decoder w."""
        if feat.tokens:
            return dict(type='PatchReconDecoder', patch_size=feat.stride)
        if feat.channels > 256:
            return dict(type='UpsampleDecoder')
        return dict(type='ReconDecoder')

    def head(self, cfg: dict, feat: FeatureInfo) -> dict:
        """A method's head config (``ClassifierHead``, ``InfoProHead``) as
        this task builds it: its own head type, or ``dense`` set."""
        head_type = self.head_types.get(cfg['type'])
        if head_type is None:
            return dict(cfg, dense=self.dense)
        return dict(cfg, type=head_type, stride=feat.stride)


@LOCAL_TASKS.register_module(name='classification')
class Classification(LocalTask):
    """Image labels (mmpretrain, mmdet's ``detection-multihot``)."""


@LOCAL_TASKS.register_module(name='segmentation')
class Segmentation(LocalTask):
    """Per-pixel labels (mmseg): InfoPro's segmentation psi, an upsampling decoder."""
    dense = True
    image_labels = False

    def classifier(self, feat):
        return dict(type='SegAuxClassifier')

    def decoder(self, feat):
        return dict(type='UpsampleDecoder')


@LOCAL_TASKS.register_module(name='detection')
class Detection(LocalTask):
    """Boxes (mmdet): mmdet's RetinaHead on the feature's level (two stacked
    convs: a light head), trained by its own ``loss_by_feat``."""
    image_labels = False
    head_types = dict(ClassifierHead='DetClassifierHead', InfoProHead='DetInfoProHead')

    def classifier(self, feat):
        return dict(type='RetinaHead', stacked_convs=2)

    def decoder(self, feat):
        if feat.tokens:
            return dict(type='PatchReconDecoder', patch_size=feat.stride)
        return dict(type='UpsampleDecoder')


def local_task(task: TaskInfo) -> LocalTask:
    """The defaults of ``task.task`` (``LOCAL_TASKS``)."""
    cls = LOCAL_TASKS.get(task.task)
    if cls is None:
        raise ValueError(f'mmlocal has no local heads for task {task.task!r}: register a '
                         f'LocalTask in mmlocal.registry.LOCAL_TASKS (known: '
                         f'{sorted(LOCAL_TASKS.module_dict)})')
    return cls()
