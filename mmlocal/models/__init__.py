from . import backbones  # noqa: F401  (registers CifarResNet)
from . import heads  # noqa: F401  (registers the local heads)
