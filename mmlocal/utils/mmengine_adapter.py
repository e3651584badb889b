"""The private mmengine pieces mmlocal needs, in one version-checked place.

mmengine has no public API for these; every use in mmlocal goes through a
function here, so a new mmengine is checked (and, if it moved a piece,
fixed) in one file. The range mmlocal was tested with is ``TESTED``; an
mmengine outside it warns once at import, and a piece that is gone raises an
error that names it and the installed version.

* ``OptimWrapper._inner_count``: the iteration counter that decides when an
  accumulated gradient is applied; a pipeline stage without the task loss
  counts its iteration without a backward.
* ``OptimWrapper._accumulative_counts``: gradient accumulation, refused by
  the pipeline.
* ``BaseDataPreprocessor._enable_normalize``: whether inputs arrive
  normalised (InfoPro reconstructs the de-normalised image).
* ``mmengine.runner.loops._InfiniteDataloaderIterator``: the iteration loop's
  iterator, rebuilt after the data workers are re-seeded.
* ``BaseModel._run_forward``: the forward ``train_step`` runs (tests).
* ``mmengine.runner.checkpoint._load_checkpoint`` /
  ``_load_checkpoint_to_model``: a checkpoint into a model (tools).
"""
import warnings
from typing import Any, Callable

import mmengine
from mmengine.utils import digit_version

#: mmengine versions these pieces were checked against: [low, high)
TESTED = ('0.10.0', '0.11.0')


def _check_version() -> None:
    low, high = TESTED
    if not digit_version(low) <= digit_version(mmengine.__version__) < digit_version(high):
        warnings.warn(f'mmlocal uses private parts of mmengine checked with {low} <= mmengine '
                      f'< {high}; this is mmengine {mmengine.__version__}. If something in '
                      'mmlocal.utils.mmengine_adapter fails, pin mmengine to that range.')


_check_version()


def _missing(what: str) -> RuntimeError:
    return RuntimeError(f'mmengine {mmengine.__version__} has no {what}, which mmlocal uses '
                        f'(checked with mmengine {TESTED[0]} to < {TESTED[1]}): pin mmengine '
                        'to that range or update mmlocal.utils.mmengine_adapter')


def count_iteration(optim_wrapper: Any) -> None:
    """Count an iteration that has no backward (``OptimWrapper.backward``
    counts the others), so accumulation and ``should_update`` stay right."""
    if not hasattr(optim_wrapper, '_inner_count'):
        raise _missing('OptimWrapper._inner_count')
    optim_wrapper._inner_count += 1


def accumulative_counts(optim_wrapper: Any) -> int:
    """``accumulative_counts`` the optim wrapper was built with."""
    return int(getattr(optim_wrapper, '_accumulative_counts', 1))


def normalizes_inputs(preprocessor: Any) -> bool:
    """Whether the data preprocessor normalises inputs with its mean and std."""
    return bool(getattr(preprocessor, '_enable_normalize', False))


def infinite_dataloader_iterator() -> type:
    """The iterator class ``IterBasedTrainLoop`` wraps its dataloader in."""
    from mmengine.runner import loops
    cls = getattr(loops, '_InfiniteDataloaderIterator', None)
    if cls is None:
        raise _missing('mmengine.runner.loops._InfiniteDataloaderIterator')
    return cls


def run_forward(model: Any, data: Any, mode: str) -> Any:
    """The forward of ``BaseModel.train_step`` (data unpacked as it does)."""
    fn: Callable = getattr(model, '_run_forward', None)
    if fn is None:
        raise _missing('BaseModel._run_forward')
    return fn(data, mode=mode)


def _checkpoint_fn(name: str) -> Callable:
    from mmengine.runner import checkpoint
    fn = getattr(checkpoint, name, None)
    if fn is None:
        raise _missing(f'mmengine.runner.checkpoint.{name}')
    return fn


def read_checkpoint(filename: str, map_location: str = 'cpu') -> dict:
    """A checkpoint file as a dict (local path, URL or ``open-mmlab://``)."""
    return _checkpoint_fn('_load_checkpoint')(filename, map_location=map_location)


def checkpoint_to_model(model: Any, checkpoint: dict, strict: bool = True, **kwargs) -> None:
    """Load a checkpoint dict (any layout mmengine reads) into ``model``, as
    ``load_checkpoint`` does without reading a file."""
    _checkpoint_fn('_load_checkpoint_to_model')(model, checkpoint, strict=strict, **kwargs)
