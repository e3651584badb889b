"""Compatibility shims applied on ``import mmlocal``, each only where needed.

* torchvision's compiled extension cannot load against a CPU-only torch here
  (its ``_C.so`` links the CUDA libraries); torchvision then fails at import
  because ``torchvision::nms`` has no schema. Defining the schemas lets the
  pure-Python parts import; OpenMMLab uses mmcv's ops, not torchvision's.
* torch >= 2.6 loads checkpoints with ``weights_only=True``; mmengine 0.10.7
  does not pass the argument, so Runner checkpoints (message hub, numpy
  scalars) are refused. We allow-list exactly the globals they contain and
  keep weights-only loading on; ``getattr``, which ``HistoryBuffer`` needs,
  is replaced by a stand-in that only returns its statistics methods.
* mmpretrain 1.2.0 imports its multimodal models (BLIP, ...) whenever
  ``transformers>=4.28`` is installed; with transformers >= 5 they fail at
  import (``BertPreTrainedModel(None)``), and so does ``import mmpretrain``.
  mmlocal needs none of them: they are turned off as mmpretrain decides
  (``WITH_MULTIMODAL = False``, mmpretrain's own placeholders register).
"""
import importlib.util
import logging
import pickle
import types
from typing import Any

import torch

logger = logging.getLogger(__name__)

_TORCHVISION_SCHEMAS = (
    'nms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor',
    'qnms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor',
)
_torchvision_lib = None  # keeps the schema library alive


def _torchvision_extension_loads() -> bool:
    """Whether ``torchvision._C`` loads (without importing torchvision)."""
    spec = importlib.util.find_spec('torchvision')
    if spec is None or not spec.submodule_search_locations:
        return True  # not installed: nothing to patch
    import glob
    import os.path as osp
    libs = []
    for loc in spec.submodule_search_locations:
        for pattern in ('_C*.so', '_C*.pyd'):
            libs += glob.glob(osp.join(loc, pattern))
    if not libs:
        return False
    try:
        torch.ops.load_library(libs[0])
    except (OSError, RuntimeError):
        return False
    return True


def patch_torchvision() -> bool:
    """Define torchvision's op schemas when its extension cannot load.

    Returns True when the patch was applied. Does nothing when torchvision is
    already imported, absent, or its extension loads (CUDA torch).
    """
    global _torchvision_lib
    import sys
    if 'torchvision' in sys.modules or _torchvision_lib is not None:
        return False
    if _torchvision_extension_loads():
        return False
    lib = torch.library.Library('torchvision', 'DEF')
    for schema in _TORCHVISION_SCHEMAS:
        lib.define(schema)
    _torchvision_lib = lib
    logger.debug('torchvision extension unavailable; defined op schemas')
    return True


def _history_buffer_getattr(obj: Any, name: str) -> Any:
    """``builtins.getattr`` as weights-only unpickling may call it.

    ``HistoryBuffer`` pickles its statistics methods (``HistoryBuffer.min``
    ...) as ``getattr(HistoryBuffer, 'min')`` and, on load, installs them in
    a class-level table that logging later calls. A real ``getattr`` would
    let a crafted checkpoint reach any object by attribute chains
    (``getattr(getattr, '__self__')`` is ``builtins``) and plant it there,
    so only public functions defined on ``HistoryBuffer`` itself pass.
    """
    from mmengine.logging.history_buffer import HistoryBuffer
    if obj is HistoryBuffer and isinstance(name, str) \
            and not name.startswith('_'):
        value = HistoryBuffer.__dict__.get(name)
        if isinstance(value, types.FunctionType):
            return value
    raise pickle.UnpicklingError(
        f'Weights-only load refused getattr({obj!r}, {name!r}): mmlocal only '
        'allows the HistoryBuffer statistics methods of mmengine checkpoints.')


_GETATTR = 'builtins.getattr'


def checkpoint_safe_globals() -> list:
    """The non-tensor globals found in mmengine Runner checkpoints.

    Entries are objects, or ``(object, 'qualified.name')`` pairs where the
    unpickler must use a restricted stand-in (``builtins.getattr``).
    """
    import numpy as np
    from mmengine.logging.history_buffer import HistoryBuffer
    try:
        from numpy._core.multiarray import _reconstruct, scalar
    except ImportError:  # numpy < 2
        from numpy.core.multiarray import _reconstruct, scalar
    dtype_classes = [
        getattr(np.dtypes, name) for name in dir(np.dtypes)
        if name.endswith('DType') and isinstance(getattr(np.dtypes, name), type)
    ]
    return [HistoryBuffer, _reconstruct, scalar, np.ndarray, np.dtype,
            (_history_buffer_getattr, _GETATTR)] + dtype_classes


def allow_checkpoint_globals() -> None:
    """Allow-list what OpenMMLab checkpoints need for weights-only loading."""
    serialization = torch.serialization
    if not hasattr(serialization, 'add_safe_globals'):
        return  # torch < 2.4 loads everything (weights_only defaults False)
    # an unrestricted getattr allow-listed elsewhere could shadow ours
    current = serialization.get_safe_globals()
    kept = [g for g in current if not _is_getattr_entry(g)]
    if len(kept) != len(current):
        serialization.clear_safe_globals()
        serialization.add_safe_globals(kept)
    serialization.add_safe_globals(checkpoint_safe_globals())


def _is_getattr_entry(entry: Any) -> bool:
    if isinstance(entry, tuple):
        return entry[0] is getattr or entry[1] == _GETATTR
    return entry is getattr


class _MultimodalOff:
    """Meta-path finder: sets ``WITH_MULTIMODAL = False`` in
    ``mmpretrain.utils.dependency`` right after that module runs."""

    target = 'mmpretrain.utils.dependency'

    def find_spec(self, name, path, target=None):
        import sys
        if name != self.target:
            return None
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, 'find_spec'):
                continue
            spec = finder.find_spec(name, path, target)
            if spec is not None and spec.loader is not None:
                run = spec.loader.exec_module

                def exec_module(module, run=run):
                    run(module)
                    module.WITH_MULTIMODAL = False

                spec.loader.exec_module = exec_module
                return spec
        return None


def _transformers_major() -> int:
    from importlib.metadata import PackageNotFoundError, version
    try:
        return int(version('transformers').split('.')[0])
    except (PackageNotFoundError, ValueError):
        return 0


def disable_mmpretrain_multimodal(force: bool = False) -> bool:
    """Turn mmpretrain's multimodal models off where they cannot import
    (transformers >= 5), before mmpretrain is imported. True when applied."""
    import sys
    if 'mmpretrain.utils.dependency' in sys.modules or any(
            isinstance(f, _MultimodalOff) for f in sys.meta_path):
        return False
    if not force and _transformers_major() < 5:
        return False
    sys.meta_path.insert(0, _MultimodalOff())
    return True


def apply() -> None:
    patch_torchvision()
    allow_checkpoint_globals()
    disable_mmpretrain_multimodal()
