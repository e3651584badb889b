"""The bundled real Cityscapes frame as detection ground truth."""
import os.path as osp
from typing import Tuple

import mmcv
import numpy as np

from .models import ROOT

CITYSCAPES = osp.join(ROOT, 'tests', 'data', 'cityscapes')
FRAME = 'frankfurt_000000_000294'
FRAME_CLASSES = {24: 0, 26: 1}  # Cityscapes person, car -> detection labels


def frame_boxes() -> Tuple[np.ndarray, list, list]:
    """The frame (H, W, 3 RGB) and the boxes (x1, y1, x2, y2) and labels of
    its person and car instances, read from its instance-id map."""
    img = mmcv.imread(osp.join(CITYSCAPES, 'leftImg8bit/val/frankfurt',
                               f'{FRAME}_leftImg8bit.png'), channel_order='rgb')
    ids = mmcv.imread(osp.join(CITYSCAPES, 'gtFine/val/frankfurt',
                               f'{FRAME}_gtFine_instanceIds.png'), flag='unchanged')
    boxes, labels = [], []
    for inst in np.unique(ids):
        if inst >= 1000 and inst // 1000 in FRAME_CLASSES:
            ys, xs = np.nonzero(ids == inst)
            boxes.append([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1])
            labels.append(FRAME_CLASSES[inst // 1000])
    return img, boxes, labels
