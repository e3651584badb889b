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
    # in a fresh interpreter, after mmlocal's shims: test_import_changes_only_what_...


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


# ------------------------------------------------- what `import mmlocal` changes
_SNAPSHOT = r'''
import json, logging, os, sys, types, warnings
import torch
ROOTS = ('torch', 'torchvision', 'numpy', 'mmengine', 'mmcv', 'mmpretrain', 'mmseg', 'mmdet')


def attributes():
    """id of every attribute of the loaded modules of ROOTS and of the
    classes they define (a monkeypatch replaces one)."""
    out = {}
    with warnings.catch_warnings():  # deprecated attributes warn when read
        warnings.simplefilter('ignore')
        for name, mod in list(sys.modules.items()):
            _attributes(name, mod, out)
    return out


def _attributes(name, mod, out):
    if name.split('.')[0] in ROOTS and isinstance(mod, types.ModuleType):
        for key, value in list(vars(mod).items()):
            out[f'{name}.{key}'] = id(value)
            if isinstance(value, type) and value.__module__ == name:
                for ckey, cvalue in list(vars(value).items()):
                    out[f'{name}.{key}.{ckey}'] = id(cvalue)


def registries():
    from mmengine.registry import Registry
    out = {}
    for name, mod in list(sys.modules.items()):
        if name.endswith('.registry') and name.split('.')[0] in ROOTS:
            for key, reg in vars(mod).items():
                if isinstance(reg, Registry):  # toolboxes re-export the root ones
                    where = 'root' if reg.parent is None else name
                    out[f'{where}.{reg.name}'] = dict(reg.module_dict)
    return out


def flags():
    return dict(threads=torch.get_num_threads(), dtype=str(torch.get_default_dtype()),
                grad=torch.is_grad_enabled(), deterministic=torch.are_deterministic_algorithms_enabled(),
                cudnn=torch.backends.cudnn.benchmark, warnings=len(warnings.filters),
                handlers=len(logging.getLogger().handlers), path=list(sys.path))


def snapshot():
    return dict(attributes=attributes(), registries=registries(), flags=flags(),
                environ=dict(os.environ), meta_path=[id(f) for f in sys.meta_path],
                safe=[g[1] if isinstance(g, tuple) else _where(g)
                      for g in torch.serialization.get_safe_globals()])


def _where(obj):
    obj = getattr(obj, 'func', obj)  # functools.partial
    return f"{getattr(obj, '__module__', '?')}.{getattr(obj, '__qualname__', repr(obj))}"


def diff(before, after):
    changed = sorted(k for k, v in before['attributes'].items()
                     if k in after['attributes'] and after['attributes'][k] != v)
    added = {}
    for reg, entries in after['registries'].items():
        old = before['registries'].get(reg, {})
        new = {k: _where(v) for k, v in entries.items() if k not in old}
        if new:
            added[reg] = new
    return dict(
        changed=changed, registered=added,
        flags={k: (v, after['flags'][k]) for k, v in before['flags'].items()
               if after['flags'][k] != v},
        environ=sorted(k for k in set(before['environ']) | set(after['environ'])
                       if before['environ'].get(k) != after['environ'].get(k)),
        meta_path=[type(f).__name__ for f in sys.meta_path if id(f) not in before['meta_path']],
        safe=sorted(set(after['safe']) - set(before['safe'])))
'''

_PROBE = _SNAPSHOT + r'''
import importlib.util
fresh = dict(meta_path=[id(f) for f in sys.meta_path],
             safe=set(_where(g) for g in torch.serialization.get_safe_globals()))
# 1. the shims import mmlocal applies first (utils/compat.py, loaded alone)
spec = importlib.util.spec_from_file_location('shims', sys.argv[1])
shims = importlib.util.module_from_spec(spec)
spec.loader.exec_module(shims)
shims.apply()
applied = dict(
    meta_path=[type(f).__name__ for f in sys.meta_path if id(f) not in fresh['meta_path']],
    safe=sorted(set(g[1] if isinstance(g, tuple) else _where(g)
                    for g in torch.serialization.get_safe_globals()) - fresh['safe']),
    torchvision_schema=shims._torchvision_lib is not None)
# 2. the toolboxes as mmlocal imports them (torchvision imports after the shims), then
# mmlocal: its own changes
import numpy, torchvision, torchvision.transforms, mmcv, mmengine.runner, mmengine.optim
import mmengine.hooks
import mmengine.model, mmengine.dataset, mmengine.evaluator, mmengine.visualization
import mmpretrain.models, mmpretrain.datasets
before = snapshot()
import mmlocal
own = diff(before, snapshot())
from mmlocal.utils.compat import patch_torchvision
applied['torchvision'] = torchvision.__version__
applied['patched_again'] = patch_torchvision()  # torchvision imported: a no-op
print(json.dumps(dict(shims=applied, own=own)))
'''


def test_import_changes_only_what_the_architecture_doc_lists():
    """A fresh interpreter: ``import mmlocal`` (docs/architecture.md, "What
    `import mmlocal` changes") applies its shims, which allow-list the
    checkpoint globals, define torchvision's op schemas only where its
    extension does not load and turn mmpretrain's multimodal models off
    only with transformers >= 5; and, the toolboxes imported, it registers
    mmlocal's classes into mmengine's root registries and changes nothing
    else: no attribute of torch, torchvision, numpy, mmengine, mmcv or the
    toolboxes is replaced, no flag, environment variable, import hook or
    toolbox registry changes."""
    import json
    doc = open(osp.join(ROOT, 'docs', 'architecture.md')).read()
    assert 'What `import mmlocal` changes' in doc
    out = subprocess.run([sys.executable, '-c', _PROBE,
                          osp.join(ROOT, 'mmlocal', 'utils', 'compat.py')],
                         cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    result = json.loads(out.stdout.strip().splitlines()[-1])

    shims = result['shims']
    assert shims['torchvision_schema'] == (not compat._torchvision_extension_loads())
    import torchvision
    assert shims['torchvision'] == torchvision.__version__ and shims['patched_again'] is False
    multimodal = ['_MultimodalOff'] if compat._transformers_major() >= 5 else []
    assert shims['meta_path'] == multimodal
    assert set(shims['safe']) == {_qualname(g) for g in compat.checkpoint_safe_globals()}

    own = result['own']
    # re-applying the allow-list rebuilds torch's set of safe globals; nothing else
    assert own['changed'] == ['torch._weights_only_unpickler._marked_safe_globals_set']
    assert own['flags'] == {} and own['environ'] == [] and own['meta_path'] == []
    assert own['safe'] == []
    assert own['registered'], 'mmlocal registered nothing'
    for reg, entries in own['registered'].items():
        assert reg.startswith('root.'), (reg, entries)  # mmengine's root registries only
        for name, where in entries.items():
            assert where.startswith('mmlocal.'), (reg, name, where)
    assert 'LocalLearningOptimWrapper' in own['registered']['root.optim_wrapper']
