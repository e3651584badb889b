"""Class-folder image datasets (``<data_root>/<split>/<class>/*.jpg``).

mmpretrain's ``CustomDataset`` reads this layout but numbers the classes in
the sorted order of whatever folders it finds (a missing or extra folder
silently shifts every label) and fails on a missing root with a bare
``No such file or directory``. :class:`ClassFolderDataset` fixes the labels
to the order of ``metainfo['classes']``, checks the folders against them and
says which config key to set when the data is not where the config expects.
"""
import os
import os.path as osp
from typing import List, Tuple

from mmengine.registry import DATASETS
from mmpretrain.datasets import CustomDataset
from mmpretrain.datasets.custom import get_samples


@DATASETS.register_module()
class ClassFolderDataset(CustomDataset):
    """A :class:`CustomDataset` over ``<data_root>/<data_prefix>/<class>/``.

    Args:
        data_root: Dataset root, e.g. ``data/cifar10``.
        data_prefix: The split folder under ``data_root``, e.g. ``'train'``.
        metainfo: Must hold ``classes``; label ``i`` is ``classes[i]`` and
            every class must have a folder of that name.
        **kwargs: Passed to :class:`CustomDataset` (``pipeline``,
            ``indices``, ``extensions``, ...).
    """

    def __init__(self, data_root: str, data_prefix: str = '', **kwargs) -> None:
        metainfo = kwargs.get('metainfo') or {}
        if not metainfo.get('classes'):
            raise ValueError('ClassFolderDataset needs metainfo=dict(classes='
                             '(...)): the label order is taken from it')
        self._check_root(data_root, data_prefix)
        super().__init__(data_root=data_root, data_prefix=data_prefix,
                         **kwargs)

    @staticmethod
    def _check_root(data_root: str, data_prefix: str) -> None:
        hint = ('point train_dataloader.dataset.data_root, '
                'val_dataloader.dataset.data_root and '
                'test_dataloader.dataset.data_root at a folder holding '
                f'{data_prefix or "<split>"}/<class>/*.jpg, e.g. '
                '--cfg-options train_dataloader.dataset.data_root=PATH '
                'val_dataloader.dataset.data_root=PATH '
                'test_dataloader.dataset.data_root=PATH '
                '(CIFAR-10: python tools/prepare_cifar10.py '
                'cifar10_jpg.tar.gz data/cifar10)')
        if not osp.isdir(data_root):
            raise FileNotFoundError(
                f'data root {data_root!r} not found '
                f'(absolute: {osp.abspath(data_root)}): {hint}')
        split_dir = osp.join(data_root, data_prefix)
        if not osp.isdir(split_dir):
            raise FileNotFoundError(
                f'split folder {data_prefix!r} not found in data root '
                f'{data_root!r}: {hint}')

    def _find_samples(self) -> List[Tuple[str, int]]:
        classes = list(self.CLASSES)
        folders = sorted(e.name for e in os.scandir(self.img_prefix)
                         if e.is_dir())
        missing = sorted(set(classes) - set(folders))
        extra = sorted(set(folders) - set(classes))
        if missing or extra:
            raise ValueError(
                f'class folders in {self.img_prefix!r} do not match '
                f'metainfo classes: missing {missing}, unexpected {extra}')
        self.folder_to_idx = {name: i for i, name in enumerate(classes)}
        samples, empty = get_samples(self.img_prefix, self.folder_to_idx,
                                     is_valid_file=self.is_valid_file)
        if empty:
            raise ValueError(f'no {"/".join(self.extensions)} images in '
                             f'{self.img_prefix!r} for classes '
                             f'{sorted(empty)}')
        return samples
