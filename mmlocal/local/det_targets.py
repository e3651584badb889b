"""Box targets of detector backbones' local heads (mmdet).

The local dense heads are trained by mmdet's own ``loss_by_feat``, which
needs what the detector's heads get: each image's ``gt_instances`` and its
metainfo (``img_shape``, ``pad_shape``, ``batch_input_shape`` as set by the
data preprocessor). The image-level multi-hot labels are kept alongside, so
the classification heads still work with these targets.
"""
from mmlocal.registry import TARGET_ADAPTERS
from .targets import DetectionTargets, LocalTargets


@TARGET_ADAPTERS.register_module(name=['TwoStageDetector', 'SingleStageDetector', 'detection'])
class BoxTargets(DetectionTargets):
    """mmdet: ``gt_instances`` and metainfo of every image (plus multi-hot labels)."""
    task = 'detection'

    def __call__(self, inputs, data_samples, preprocessor) -> LocalTargets:
        targets = super().__call__(inputs, data_samples, preprocessor)
        targets.instances = [s.gt_instances.to(inputs.device) for s in data_samples]
        targets.metas = [s.metainfo for s in data_samples]
        return targets
