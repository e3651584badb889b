"""The bundled real Cityscapes frame as detection ground truth."""
import os.path as osp
from typing import Tuple

import mmcv
import numpy as np
import torch

from .models import ROOT

CITYSCAPES = osp.join(ROOT, 'tests', 'data', 'cityscapes')
FRAME = 'frankfurt_000000_000294'
FRAME_CLASSES = {24: 0, 26: 1}  # Cityscapes person, car -> detection labels


def frame_instances() -> Tuple[np.ndarray, list, list, np.ndarray]:
    """The frame (H, W, 3 RGB) and the boxes (x1, y1, x2, y2), labels and
    binary masks (N, H, W) of its person and car instances, read from its
    instance-id map."""
    img = mmcv.imread(osp.join(CITYSCAPES, 'leftImg8bit/val/frankfurt',
                               f'{FRAME}_leftImg8bit.png'), channel_order='rgb')
    ids = mmcv.imread(osp.join(CITYSCAPES, 'gtFine/val/frankfurt',
                               f'{FRAME}_gtFine_instanceIds.png'), flag='unchanged')
    boxes, labels, masks = [], [], []
    for inst in np.unique(ids):
        if inst >= 1000 and inst // 1000 in FRAME_CLASSES:
            mask = ids == inst
            ys, xs = np.nonzero(mask)
            boxes.append([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1])
            labels.append(FRAME_CLASSES[inst // 1000])
            masks.append(mask)
    return img, boxes, labels, np.stack(masks).astype(np.uint8)


def frame_boxes() -> Tuple[np.ndarray, list, list]:
    """The frame and its person and car boxes and labels (no masks)."""
    img, boxes, labels, _ = frame_instances()
    return img, boxes, labels


def frame_batch(n: int = 2, masks: bool = False) -> dict:
    """``n`` copies of the frame as a packed mmdet batch: ``gt_instances``
    with boxes and labels, and with ``BitmapMasks`` when ``masks``."""
    from mmdet.structures import DetDataSample
    from mmdet.structures.mask import BitmapMasks
    from mmengine.structures import InstanceData
    img, boxes, labels, inst_masks = frame_instances()
    h, w = img.shape[:2]
    samples = []
    for _ in range(n):
        s = DetDataSample(metainfo=dict(img_shape=(h, w), ori_shape=(h, w), pad_shape=(h, w),
                                        scale_factor=(1., 1.), batch_input_shape=(h, w)))
        s.gt_instances = InstanceData(bboxes=torch.tensor(boxes, dtype=torch.float32),
                                      labels=torch.tensor(labels))
        if masks:
            s.gt_instances.masks = BitmapMasks(inst_masks, h, w)
        samples.append(s)
    x = torch.from_numpy(img).permute(2, 0, 1).contiguous()
    return dict(inputs=[x] * n, data_samples=samples)
