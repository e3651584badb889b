"""One step's local losses, kept on the device until someone reads them.

Reading a tensor's value on the host (``.item()``, ``float(t)``, ``if t:``)
waits for the device: on CUDA the CPU stops launching the next module's work
until the GPU has caught up. A step therefore never reads its local losses;
it hands them over as a ``LocalLosses`` record, and they are read *once*, all
together (one device-to-host copy), after the iteration, where mmengine reads
the task loss for logging anyway (``LocalLossHook``), or by the optim wrapper
when no hook reads them (``LocalLearningMixin``).

Reading also checks them: a loss that is not finite stops training with a
``FloatingPointError`` naming the loss, its module and its boundary. The check
comes after the iteration's optimizer step, so the parameters of that step
are no longer finite: the message says so, and the run stops before
anything else (logging, checkpoints) sees them.
"""
import math
from collections.abc import Mapping
from typing import Dict, Iterator, Tuple

import torch


class LocalLosses(Mapping):
    """Local losses of one step: ``'local.m3.loss_cls' -> 0-dim tensor``.

    Args:
        check_finite: whether :meth:`read` refuses a non-finite loss.
    """

    def __init__(self, check_finite: bool = True) -> None:
        self.check_finite = check_finite
        self._values: Dict[str, torch.Tensor] = {}
        self._where: Dict[str, Tuple[int, str]] = {}  # key -> (module, boundary)

    def add(self, key: str, value: torch.Tensor, module: int, boundary: str) -> None:
        """Record a detached loss of module ``module`` (0-based), read at ``boundary``."""
        self._values[key] = value
        self._where[key] = (module, boundary)

    def __getitem__(self, key: str) -> torch.Tensor:
        return self._values[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def read(self) -> Dict[str, float]:
        """Every loss as a float, with one host sync for all of them.

        Raises:
            FloatingPointError: a loss is NaN or infinite (``check_finite``).
        """
        if not self._values:
            return {}
        keys = list(self._values)
        values = torch.stack([self._values[k].float().reshape(()) for k in keys]).tolist()
        read = dict(zip(keys, values))
        if self.check_finite:
            for key, value in read.items():
                if not math.isfinite(value):
                    module, boundary = self._where[key]
                    raise FloatingPointError(
                        f'local loss {key} is {value} at module m{module + 1} ({boundary}); '
                        'the parameters were updated with it and are not finite any more: '
                        'resume from the last checkpoint with a lower learning rate or '
                        'gradient clipping (optim_wrapper.clip_grad), or check the inputs '
                        '(local.check_finite=False turns this check off)')
        return read

    def log(self, message_hub, prefix: str = 'train/') -> Dict[str, float]:
        """:meth:`read` (checked), then into ``message_hub`` as ``prefix + key``."""
        read = self.read()
        for key, value in read.items():
            message_hub.update_scalar(prefix + key, value)
        return read
