"""A config's model and optim wrapper, built as the Runner builds them."""
import copy
from typing import Optional, Tuple, Union

import torch
from mmengine.config import Config
from mmengine.model import revert_sync_batchnorm
from mmengine.optim import OptimWrapper, build_optim_wrapper
from mmengine.registry import MODELS, init_default_scope
from mmengine.utils import import_modules_from_strings


def load_config(path: str, cfg_options: Optional[dict] = None) -> Config:
    """``Config.fromfile`` (which imports ``custom_imports``) plus overrides;
    a toolbox zoo name (``mmpretrain::convnext/convnext-tiny_32xb128_in1k.py``)
    is read from the installed toolbox."""
    if '::' in path:
        from mmengine.hub import get_config
        cfg = get_config(path)
    else:
        cfg = Config.fromfile(path)
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    return cfg


def init_config_scope(cfg: Config) -> None:
    """Make the config's registries current: its toolbox's default scope and
    its ``custom_imports`` (a config built in code has not imported them)."""
    custom_imports = cfg.get('custom_imports', None)
    if custom_imports:
        import_modules_from_strings(**custom_imports)
    init_default_scope(cfg.get('default_scope', 'mmengine'))


def build_model(cfg: Config) -> torch.nn.Module:
    """The config's model; a top-level ``data_preprocessor`` (normalisation,
    Mixup) becomes the model's, as the Runner does."""
    init_config_scope(cfg)
    model_cfg = copy.deepcopy(cfg.model)
    if cfg.get('data_preprocessor') is not None:
        model_cfg.setdefault('data_preprocessor', copy.deepcopy(cfg.data_preprocessor))
    return MODELS.build(model_cfg)


def build_model_and_optim_wrapper(
        cfg: Config, device: Union[str, torch.device] = 'cpu'
) -> Tuple[torch.nn.Module, OptimWrapper]:
    """The model in train mode on ``device`` and its optim wrapper, as the
    Runner builds them for one process (SyncBN reverted, no checkpoint).

    The wrapper is built by the config's own constructor, so a local-learning
    config attaches its heads exactly as in training.
    """
    model = revert_sync_batchnorm(build_model(cfg)).to(device)
    model.train()
    optim_wrapper = build_optim_wrapper(model, copy.deepcopy(cfg.optim_wrapper))
    return model, optim_wrapper
