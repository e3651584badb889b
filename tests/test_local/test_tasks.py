"""The task supplies its local heads' defaults (``LOCAL_TASKS``), the same
for every method; a task without an entry is refused with the fix named."""
import pytest

from mmlocal.local.methods import DGL, PredSim
from mmlocal.local.tasks import LocalTask, local_task
from mmlocal.registry import DENSE_HEAD_LEVELS, LOCAL_TASKS
from mmlocal.structures import FeatureInfo, TaskInfo


def test_every_adapter_task_has_its_defaults():
    assert {'classification', 'segmentation', 'detection'} <= set(LOCAL_TASKS.module_dict)
    assert {'RetinaHead', 'RPNHead', 'FCOSHead'} <= set(DENSE_HEAD_LEVELS.module_dict)
    seg = local_task(TaskInfo('segmentation', 19))
    assert seg.dense and not seg.image_labels
    det = local_task(TaskInfo('detection', 80))
    feat = FeatureInfo(256, (8, 8), stride=8)
    assert det.head(dict(type='InfoProHead', in_channels=256), feat) == dict(
        type='DetInfoProHead', in_channels=256, stride=8)
    # Swin tokens in a detector reconstruct per patch, as in classification
    tokens = FeatureInfo(96, (8, 8), stride=4, tokens=True)
    assert det.decoder(tokens) == dict(type='PatchReconDecoder', patch_size=4)
    assert local_task(TaskInfo('segmentation', 19)).decoder(tokens)['type'] == 'UpsampleDecoder'


def test_unknown_task_is_refused_and_a_registered_one_is_used():
    feat = FeatureInfo(16, (8, 8))
    with pytest.raises(ValueError, match=r"no local heads for task 'depth'.*LOCAL_TASKS"):
        DGL().build_head(feat, TaskInfo('depth', 1), dict(cls=1.))

    class Depth(LocalTask):
        image_labels = False

        def classifier(self, feat):
            return dict(type='ConvAuxClassifier', arch='0c1f')

    LOCAL_TASKS.register_module(name='depth', module=Depth)
    try:
        head = DGL().build_head(feat, TaskInfo('depth', 1), dict(cls=1.))
        assert type(head.classifier).__name__ == 'ConvAuxClassifier' and not head.dense
        with pytest.raises(ValueError, match='PredSim is defined for classification'):
            PredSim().build_head(feat, TaskInfo('depth', 1), dict(predsim=1.))
    finally:
        LOCAL_TASKS.module_dict.pop('depth')
