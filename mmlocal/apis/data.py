"""One batch for a config: from its own training pipeline, or synthetic."""
import copy
from typing import Optional, Sequence, Tuple

import torch
from mmengine.config import Config
from mmengine.runner import Runner

from .builder import init_config_scope
from .toolboxes import get_toolbox

CROP_KEYS = ('crop_size', 'scale', 'size')


def real_batch(cfg: Config, batch_size: int, seed: int = 0) -> dict:
    """The first batch of the config's training dataloader (no workers)."""
    init_config_scope(cfg)
    dl_cfg = copy.deepcopy(cfg.train_dataloader)
    dl_cfg.update(batch_size=batch_size, num_workers=0, persistent_workers=False)
    dl_cfg.pop('prefetch_factor', None)  # only valid with workers
    try:
        loader = Runner.build_dataloader(dl_cfg, seed=seed)
        return next(iter(loader))
    except (FileNotFoundError, OSError) as e:
        raise RuntimeError(
            f'Cannot read the training data of this config ({e}). Point it at '
            'the dataset with --cfg-options train_dataloader.dataset.data_root='
            'PATH, or benchmark on random inputs with --synthetic '
            '--input-size H W.') from e


def input_size_of(cfg: Config) -> Optional[Tuple[int, int]]:
    """(H, W) the training pipeline produces, when the config says so:
    mmseg's ``crop_size``, else the last crop of the pipeline."""

    def as_hw(v):
        if isinstance(v, int):
            return (v, v)
        if isinstance(v, (list, tuple)) and len(v) == 2 and all(
                isinstance(x, int) for x in v):
            return tuple(v)
        return None

    if as_hw(cfg.get('crop_size')):
        return as_hw(cfg.get('crop_size'))
    pipeline = cfg.get('train_dataloader', {}).get('dataset', {}).get('pipeline', [])
    for t in reversed(list(pipeline)):
        if 'Crop' in str(t.get('type', '')):
            for key in CROP_KEYS:
                hw = as_hw(t.get(key))
                if hw:
                    return hw
    return None


def fit_preprocessor_size(cfg: Config, input_size: Sequence[int]) -> None:
    """Make a padding data preprocessor (mmseg ``size=crop_size``) keep
    ``input_size`` instead of padding it to the config's crop (in place)."""
    pre = cfg.model.get('data_preprocessor')
    if isinstance(pre, dict) and pre.get('size') is not None:
        pre['size'] = tuple(input_size)


def synthetic_batch(cfg: Config, batch_size: int,
                    input_size: Optional[Sequence[int]] = None,
                    seed: int = 0) -> dict:
    """Random uint8 images with random targets, shaped like packed samples of
    the config's toolbox; ``input_size`` defaults to ``input_size_of(cfg)``."""
    hw = tuple(input_size) if input_size else input_size_of(cfg)
    if hw is None:
        raise ValueError('Cannot tell the input size from the config: pass '
                         '--input-size H W.')
    g = torch.Generator().manual_seed(seed)
    inputs = [
        torch.randint(0, 256, (3, *hw), dtype=torch.uint8, generator=g)
        for _ in range(batch_size)
    ]
    samples = get_toolbox(cfg).synthetic_samples(cfg, batch_size, hw, g)
    return dict(inputs=inputs, data_samples=samples)
