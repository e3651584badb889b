"""Build the offline detection set: real pixels, generated layouts, exact boxes.

No detection dataset can be downloaded here, so this script composes one from
the project's offline real images (``../shared/data``):

* backgrounds: random square crops (random size, position and flip) of the
  real unlabelled Cityscapes street scene ``demo_unlabeled_1024x512.png``,
  of the image's aspect ratio, resized to ``--size``;
* objects: real Tiny-ImageNet images of the 10 ``imagenet_mini`` classes
  (the object with its own photo background), resized to a random size and
  pasted without overlap; the box is the pasted rectangle, exact.

Train objects come from ``imagenet_mini/train``, val objects from
``imagenet_mini/val``, so no object image is in both splits. Output: the COCO
layout mmdet's ``CocoDataset`` reads (``annotations/instances_{train,val}.json``,
``train/``, ``val/``). The same arguments and seed rebuild the same set.

    python tools/prepare_det_data.py ../shared/data data/det_mini

The memory benchmark's 1333x800 images (the COCO training scale):

    python tools/prepare_det_data.py ../shared/data data/det_bench \
        --size 1333 800 --num-train 4 --num-val 2 --object-size 80 400
"""
import argparse
import io
import json
import os
import os.path as osp
import tarfile
from typing import Dict, List, Tuple

import numpy as np
from PIL import Image

SCENE = 'cityscapes_mini/demo_unlabeled_1024x512.png'
OBJECTS = 'imagenet_mini.tar.gz'


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('source', help='the offline data folder (../shared/data)')
    p.add_argument('out', help='output folder (COCO layout)')
    p.add_argument('--num-train', type=int, default=200)
    p.add_argument('--num-val', type=int, default=40)
    p.add_argument('--size', type=int, nargs=2, default=(256, 256), metavar=('W', 'H'),
                   help='image width and height in pixels')
    p.add_argument('--objects', type=int, nargs=2, default=(1, 4),
                   help='min and max objects per image')
    p.add_argument('--object-size', type=int, nargs=2, default=(40, 112),
                   help='min and max object side in pixels')
    p.add_argument('--quality', type=int, default=85, help='JPEG quality')
    p.add_argument('--seed', type=int, default=0)
    return p.parse_args()


def load_objects(path: str) -> Tuple[List[str], Dict[str, List[Tuple[int, Image.Image]]]]:
    """Class names and, per split, (label, image) of every Tiny-ImageNet image."""
    objects: Dict[str, List[Tuple[int, Image.Image]]] = {'train': [], 'val': []}
    with tarfile.open(path) as tar:
        names = [m for m in tar.getmembers() if m.isfile()]
        by_name = {m.name: m for m in names}
        classes_file = tar.extractfile(by_name['imagenet_mini/meta/classes.txt'])
        rows = [r.split(' ', 1) for r in classes_file.read().decode().splitlines() if r]
        wnids = [r[0] for r in rows]
        classes = [r[1].split(',')[0].strip() for r in rows]
        for split in objects:
            meta = tar.extractfile(by_name[f'imagenet_mini/meta/{split}.txt'])
            for line in sorted(meta.read().decode().splitlines()):
                if not line.strip():
                    continue
                rel, label = line.rsplit(' ', 1)
                data = tar.extractfile(by_name[f'imagenet_mini/{split}/{rel}']).read()
                img = Image.open(io.BytesIO(data)).convert('RGB')
                objects[split].append((int(label), img))
    assert len(wnids) == len(classes)
    return classes, objects


def place(rng: np.random.Generator, size: Tuple[int, int], n: int, lo: int,
          hi: int) -> List[List[int]]:
    """Up to n non-overlapping boxes [x1, y1, x2, y2] inside a W x H image."""
    width, height = size
    boxes: List[List[int]] = []
    for _ in range(50 * n):
        if len(boxes) == n:
            break
        w = int(rng.integers(lo, hi + 1))
        h = int(round(w * rng.uniform(0.75, 1.33)))
        w, h = min(w, width), min(max(h, lo), height)
        x, y = int(rng.integers(0, width - w + 1)), int(rng.integers(0, height - h + 1))
        box = [x, y, x + w, y + h]
        if all(box[2] <= b[0] or b[2] <= box[0] or box[3] <= b[1] or b[3] <= box[1]
               for b in boxes):
            boxes.append(box)
    return boxes


def build_split(split: str, num: int, scene: Image.Image, objects, classes, args,
                rng: np.random.Generator) -> dict:
    folder = osp.join(args.out, split)
    os.makedirs(folder, exist_ok=True)
    images, annotations = [], []
    order = rng.permutation(len(objects))
    taken = 0
    for i in range(num):
        width, height = args.size
        ch = int(rng.integers(scene.height // 2, scene.height + 1))
        cw = min(int(round(ch * width / height)), scene.width)
        x0 = int(rng.integers(0, scene.width - cw + 1))
        y0 = int(rng.integers(0, scene.height - ch + 1))
        img = scene.crop((x0, y0, x0 + cw, y0 + ch)).resize((width, height), Image.BILINEAR)
        if rng.random() < 0.5:
            img = img.transpose(Image.FLIP_LEFT_RIGHT)
        n = int(rng.integers(args.objects[0], args.objects[1] + 1))
        for box in place(rng, args.size, n, *args.object_size):
            label, obj = objects[order[taken % len(order)]]
            taken += 1
            x1, y1, x2, y2 = box
            img.paste(obj.resize((x2 - x1, y2 - y1), Image.BILINEAR), (x1, y1))
            annotations.append(dict(
                id=len(annotations) + 1, image_id=i + 1, category_id=label + 1,
                bbox=[x1, y1, x2 - x1, y2 - y1], area=(x2 - x1) * (y2 - y1), iscrowd=0))
        name = f'{split}_{i:05d}.jpg'
        img.save(osp.join(folder, name), quality=args.quality)
        images.append(dict(id=i + 1, file_name=name, width=width, height=height))
    return dict(
        info=dict(description='mmlocal offline detection set: real Cityscapes street '
                  'backgrounds and real Tiny-ImageNet objects, generated layouts',
                  seed=args.seed),
        images=images, annotations=annotations,
        categories=[dict(id=k + 1, name=c) for k, c in enumerate(classes)])


def main():
    args = parse_args()
    scene_path = osp.join(args.source, SCENE)
    objects_path = osp.join(args.source, OBJECTS)
    for path in (scene_path, objects_path):
        if not osp.exists(path):
            raise FileNotFoundError(f'{path} not found: pass the offline data folder '
                                    '(../shared/data) as the first argument')
    scene = Image.open(scene_path).convert('RGB')
    classes, objects = load_objects(objects_path)
    rng = np.random.default_rng(args.seed)
    os.makedirs(osp.join(args.out, 'annotations'), exist_ok=True)
    for split, num in (('train', args.num_train), ('val', args.num_val)):
        coco = build_split(split, num, scene, objects[split], classes, args, rng)
        with open(osp.join(args.out, 'annotations', f'instances_{split}.json'), 'w') as f:
            json.dump(coco, f)
        print(f'{split}: {len(coco["images"])} images, {len(coco["annotations"])} boxes')
    print('classes:', ', '.join(classes))


if __name__ == '__main__':
    main()
