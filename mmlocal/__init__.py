"""mmlocal: supervised local learning for OpenMMLab models."""
from .utils import compat as _compat

_compat.apply()  # before anything imports torchvision or loads a checkpoint

from . import analysis, datasets, engine, local, models  # noqa: E402,F401  (register classes)
from .version import __version__  # noqa: E402

__all__ = ['__version__']
