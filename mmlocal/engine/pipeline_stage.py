"""The forward of one pipeline stage, inside the model's unmodified forward.

A stage of local modules ``first..last`` runs only its own blocks. It does
so through a *stage view* of the model: a module tree built for the stage
whose containers are shallow copies of the model's (sharing every
parameter, buffer, hook and non-block child), in which

* the blocks upstream of the stage are ``Skip`` (their input passes through)
  and the block just before the stage is a ``StageInput`` (it returns the
  activation received from the previous stage);
* on a stage that is not the last, the blocks downstream and the backbone's
  output-only norms are ``Skip``: the forward goes through the backbone
  only, and the stage's output is what the step kept at its last boundary
  (``LocalStep.outgoing``), not what the backbone returns.

The model itself is never changed: validation, testing and checkpoints use
it as it is, and hooks installed on it (the learner's, the isolation
check's) act in the view because the copies share their hook tables. The
last stage calls the view of the whole model (``mode='loss'``: necks, heads
and the toolbox's loss untouched); the others call the view of the
backbone on the preprocessed inputs, as every mm model's ``extract_feat``
does, after starting the step with the batch's targets.

Parts of the backbone outside the blocks still run (a stem before a later
stage, downsampling layers between stages of ConvNeXt or Swin after an
earlier one): blocks keep their input's shape when skipped, so these parts
see the shapes they expect; their results do not reach the stage's output.
"""
import contextlib
import copy
from dataclasses import dataclass
from typing import Dict, Iterator, List, Optional, Sequence, Tuple

import torch
import torch.nn as nn

from mmlocal.local.block_lists import output_modules
from mmlocal.local.step import LocalStep, StageRange


class Skip(nn.Module):
    """A block this stage does not run: its first input passes through."""

    def forward(self, x, *args, **kwargs):
        return x


class StageInput(nn.Module):
    """The last block before the stage: returns the received activation."""

    def __init__(self) -> None:
        super().__init__()
        self._received: Optional[torch.Tensor] = None

    @contextlib.contextmanager
    def feeding(self, received: torch.Tensor) -> Iterator[None]:
        self._received = received
        try:
            yield
        finally:
            self._received = None

    def forward(self, *args, **kwargs) -> torch.Tensor:
        if self._received is None:
            raise RuntimeError('a pipeline stage ran without the activation of the stage '
                               'before it')
        return self._received


def substituted(root: nn.Module, replace: Dict[str, nn.Module]
                ) -> Tuple[nn.Module, List[Tuple[nn.Module, nn.Module]]]:
    """A view of ``root`` where each path in ``replace`` (relative to root)
    is the given module: every ancestor of a replaced path is a shallow copy
    (its own table of children, everything else shared), the rest is the
    model's own modules. Returns the view and the (copy, original) pairs."""
    copies: Dict[str, nn.Module] = {}
    pairs: List[Tuple[nn.Module, nn.Module]] = []

    def view_of(path: str) -> nn.Module:
        if path in copies:
            return copies[path]
        original = root.get_submodule(path) if path else root
        clone = copy.copy(original)
        clone._modules = dict(original._modules)  # the copy's own children table
        copies[path] = clone
        pairs.append((clone, original))
        if path:
            parent, _, name = path.rpartition('.')
            view_of(parent)._modules[name] = clone
        return clone

    for path, module in replace.items():
        parent, _, name = path.rpartition('.')
        if name not in (root.get_submodule(parent) if parent else root)._modules:
            raise KeyError(f'{path} is not a submodule of {type(root).__name__}')
        view_of(parent)._modules[name] = module
    return view_of(''), pairs


class StageForward:
    """Runs the forward of one stage's modules.

    Args:
        model: the task model (unwrapped).
        backbone: the backbone's path in the model (``local.backbone``).
        blocks: the backbone's blocks (model-relative paths), in order.
        boundaries: the plan's K-1 boundaries.
        stage: the stage's modules.
    """

    def __init__(self, model: nn.Module, backbone: str, blocks: Sequence[str],
                 boundaries: Sequence[str], stage: StageRange) -> None:
        self.stage = stage
        self.is_last = stage.last == len(boundaries)
        self.input = StageInput() if stage.first > 0 else None
        replace: Dict[str, nn.Module] = {}
        if stage.first > 0:
            end = blocks.index(boundaries[stage.first - 1])
            replace.update({p: Skip() for p in blocks[:end]})
            replace[blocks[end]] = self.input
        if not self.is_last:
            start = blocks.index(boundaries[stage.last]) + 1
            replace.update({p: Skip() for p in blocks[start:]})
            replace.update({p: Skip() for p in output_modules(model, backbone)})
        prefix = backbone + '.'
        if self.is_last:
            self.view, self._pairs = substituted(model, replace)
        else:
            self.view, self._pairs = substituted(
                model.get_submodule(backbone),
                {p[len(prefix):]: m for p, m in replace.items()})
        self.model = model

    def __call__(self, data: dict, step: LocalStep,
                 received: Optional[torch.Tensor]) -> Optional[dict]:
        """The stage's forward on preprocessed ``data``: the task's losses
        on the last stage, else None (the stage's output is
        ``step.outgoing``)."""
        for clone, original in self._pairs:  # follow the Runner's train()/eval()
            clone.training = original.training
        feeding = self.input.feeding(received) if self.input is not None \
            else contextlib.nullcontext()
        with feeding:
            if self.is_last:
                return self.view(**data, mode='loss')
            inputs, samples = data['inputs'], data.get('data_samples')
            step.begin(step.context.adapter(inputs, samples,
                                            getattr(self.model, 'data_preprocessor', None)))
            self.view(inputs)
        if step.outgoing is None:
            raise RuntimeError(f'local boundary of module m{self.stage.last + 1} did not run in '
                               "the stage's forward")
        return None


@dataclass(frozen=True)
class StageSync:
    """What the optim wrapper needs of its pipeline stage: the modules its
    steps train, the process group of the stage's replicas (gradients are
    averaged among them only) and the parameters the stage owns."""
    modules: StageRange
    group: Optional[object]
    params: Tuple[nn.Parameter, ...]
