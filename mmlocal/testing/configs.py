"""The repository's configs (``configs/``), by name, for tests."""
import os.path as osp

from mmengine.config import Config

from .models import ROOT

#: the repository's configs folder
CONFIGS = osp.join(ROOT, 'configs')


def repo_config(name: str) -> Config:
    """``configs/<name>`` (the ``.py`` may be left out), read by mmengine."""
    path = osp.join(CONFIGS, name if name.endswith('.py') else f'{name}.py')
    if not osp.isfile(path):
        raise FileNotFoundError(f'no config {name!r} in {CONFIGS}')
    return Config.fromfile(path)
