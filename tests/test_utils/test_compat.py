"""The compatibility shims: weights-only checkpoint loading stays safe and
still reads real mmengine Runner checkpoints; torchvision imports."""
import copy
import glob
import os
import os.path as osp
import pickle
import subprocess
import sys

import numpy as np
import pytest
import torch
from mmengine.logging import HistoryBuffer
from mmengine.runner import CheckpointLoader, load_checkpoint
from mmengine.testing import RunnerTestCase

import mmlocal  # noqa: F401  (applies compat)
from mmlocal.utils import compat

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


def _qualname(entry) -> str:
    if isinstance(entry, tuple):
        return entry[1]
    return f'{entry.__module__}.{entry.__qualname__}'


class _RunsCommand:
    """Pickles to ``os.system(command)``: code execution on a full unpickle."""

    def __init__(self, command: str):
        self.command = command

    def __reduce__(self):
        return os.system, (self.command, )


class _Builtins:
    """Pickles to ``getattr(getattr, '__self__')``, i.e. the builtins module."""

    def __reduce__(self):
        return getattr, (getattr, '__self__')


class _Exec:
    """Pickles to ``getattr(builtins, 'exec')``."""

    def __reduce__(self):
        return getattr, (_Builtins(), 'exec')


class _PlantedHistoryBuffer:
    """A HistoryBuffer whose state installs ``exec`` as its 'mean' statistic
    (``HistoryBuffer.__setstate__`` updates a class-level table that the
    logger later calls)."""

    def __reduce__(self):
        state = dict(_log_history=np.array([1.]), _count_history=np.array([1]),
                     max_length=10, statistics_methods=dict(mean=_Exec()))
        return HistoryBuffer, (), state


def _save_crafted(obj, path: str) -> None:
    torch.save(dict(state_dict=dict(w=torch.zeros(1)), meta=obj), path)


def test_code_executing_checkpoint_refused(tmp_path):
    marker = tmp_path / 'MARKER'
    ckpt = str(tmp_path / 'evil.pth')
    _save_crafted(_RunsCommand(f'touch {marker}'), ckpt)

    with pytest.raises(pickle.UnpicklingError, match='system'):
        torch.load(ckpt, map_location='cpu')
    with pytest.raises(pickle.UnpicklingError):
        CheckpointLoader.load_checkpoint(ckpt, map_location='cpu')
    with pytest.raises(pickle.UnpicklingError):
        load_checkpoint(torch.nn.Linear(1, 1), ckpt, map_location='cpu')
    assert not marker.exists()


def test_getattr_is_restricted(tmp_path):
    """``builtins.getattr`` is allowed (HistoryBuffer needs it) but cannot
    reach arbitrary objects and plant them into HistoryBuffer."""
    ckpt = str(tmp_path / 'planted.pth')
    _save_crafted(_PlantedHistoryBuffer(), ckpt)
    with pytest.raises(pickle.UnpicklingError, match='refused getattr'):
        torch.load(ckpt, map_location='cpu')
    with pytest.raises(pickle.UnpicklingError, match='refused getattr'):
        CheckpointLoader.load_checkpoint(ckpt, map_location='cpu')
    for name, method in HistoryBuffer._statistics_methods.items():
        assert method is getattr(HistoryBuffer, name)  # nothing planted


def test_allow_list_is_exact():
    names = {_qualname(g) for g in compat.checkpoint_safe_globals()}
    multiarray = np.ndarray.__module__ + (
        '._core.multiarray' if hasattr(np, '_core') else '.core.multiarray')
    expected = {
        'mmengine.logging.history_buffer.HistoryBuffer',
        f'{multiarray}._reconstruct',
        f'{multiarray}.scalar',
        'numpy.ndarray',
        'numpy.dtype',
        'builtins.getattr',
    }
    dtype_classes = names - expected
    assert expected <= names
    assert dtype_classes and all(
        n.startswith('numpy.dtypes.') and n.endswith('DType')
        for n in dtype_classes), dtype_classes

    registered = torch.serialization.get_safe_globals()
    registered_names = {_qualname(g) for g in registered}
    assert names <= registered_names
    objects = {id(g[0] if isinstance(g, tuple) else g) for g in registered}
    for dangerous in (eval, exec, getattr, setattr, __import__, compile,
                      open, os.system, os.popen, subprocess.Popen,
                      pickle.loads):
        assert id(dangerous) not in objects, dangerous
    # builtins.getattr resolves to the restricted stand-in, not getattr
    stand_ins = [g[0] for g in registered
                 if isinstance(g, tuple) and g[1] == 'builtins.getattr']
    assert stand_ins == [compat._history_buffer_getattr]
    assert stand_ins[0](HistoryBuffer, 'min') is HistoryBuffer.min
    with pytest.raises(pickle.UnpicklingError):
        stand_ins[0](HistoryBuffer, '__init__')
    with pytest.raises(pickle.UnpicklingError):
        stand_ins[0](os, 'system')


def test_allow_list_drops_unrestricted_getattr():
    torch.serialization.add_safe_globals([getattr])
    compat.allow_checkpoint_globals()
    registered = torch.serialization.get_safe_globals()
    assert getattr not in registered
    assert (compat._history_buffer_getattr, 'builtins.getattr') in registered


class _ToyRunner(RunnerTestCase):
    """mmengine's toy model/data configs, used here as a helper."""
    __test__ = False

    def runTest(self):  # pragma: no cover
        pass


def test_runner_checkpoint_loads_and_resumes(tmp_path):
    """A real Runner checkpoint (message hub HistoryBuffers, numpy scalars
    and arrays) loads weights-only, and the Runner resumes from it."""
    case = _ToyRunner()
    case.setUp()
    try:
        cfg = copy.deepcopy(case.epoch_based_cfg)
        cfg.work_dir = str(tmp_path)
        cfg.train_cfg.max_epochs = 1
        cfg.experiment_name = 'compat_train'
        case.build_runner(cfg).train()
        ckpt = glob.glob(osp.join(str(tmp_path), 'epoch_1.pth'))[0]

        unsafe = torch.serialization.get_unsafe_globals_in_checkpoint(ckpt)
        assert unsafe == []  # all its globals are allow-listed
        checkpoint = torch.load(ckpt, map_location='cpu')  # weights-only
        hub = checkpoint['message_hub']
        buffer = hub['log_scalars']['train/loss']
        assert isinstance(buffer, HistoryBuffer)
        assert isinstance(buffer.data[0], np.ndarray)
        assert isinstance(buffer.mean(), (float, np.floating))
        assert CheckpointLoader.load_checkpoint(ckpt)['meta']['epoch'] == 1

        cfg.train_cfg.max_epochs = 2
        cfg.resume = True
        cfg.load_from = ckpt
        cfg.experiment_name = 'compat_resume'
        runner = case.build_runner(cfg)
        runner.train()
        assert runner.epoch == 2
    finally:
        case.tearDown()


def test_torchvision_imports_and_patch_is_noop():
    import torchvision
    import torchvision.transforms as transforms
    assert transforms.Normalize is not None
    assert 'torchvision' in sys.modules
    assert compat.patch_torchvision() is False  # already imported: no-op
    # a fresh interpreter: import mmlocal first, then torchvision works
    code = ('import mmlocal, torchvision, torchvision.transforms; '
            'from mmlocal.utils.compat import patch_torchvision; '
            'assert patch_torchvision() is False; print(torchvision.__version__)')
    out = subprocess.run([sys.executable, '-c', code], cwd=ROOT,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == torchvision.__version__


def test_mmpretrain_multimodal_off_before_import():
    """With transformers >= 5 (the GPU machine's 5.17), mmpretrain 1.2.0's
    BLIP models fail at import and take ``import mmpretrain`` with them; the
    shim turns them off as mmpretrain decides. Forced here, in a fresh
    interpreter that has not imported mmpretrain, from compat.py alone."""
    code = (
        'import importlib.util, sys\n'
        f'spec = importlib.util.spec_from_file_location("c", {osp.join(ROOT, "mmlocal/utils/compat.py")!r})\n'
        'c = importlib.util.module_from_spec(spec); spec.loader.exec_module(c)\n'
        'c.patch_torchvision()\n'
        'assert c.disable_mmpretrain_multimodal(force=True)\n'
        'assert not c.disable_mmpretrain_multimodal(force=True)  # once\n'
        'import mmpretrain.models, mmpretrain.utils.dependency as d\n'
        'from mmpretrain.registry import MODELS\n'
        'assert d.WITH_MULTIMODAL is False\n'
        'assert MODELS.get("BlipCaption").__name__ == "ask_install"\n'
        'print("ok")\n')
    out = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0 and out.stdout.strip() == 'ok', out.stderr[-2000:]
    # in this process mmpretrain is imported already: the shim does nothing
    assert not compat.disable_mmpretrain_multimodal(force=True)
