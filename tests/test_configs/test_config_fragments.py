"""The method fragments of ``configs/_base_/local/`` and the configs composed
from them: every local config takes its method from a fragment, the wrapper
boilerplate and HiLo's default weights are written once, no fragment's helper
key reaches a resolved config, and every docstring names its source.

The checks on the files' text and ``_base_`` chains are fast; the ones that
resolve all configs with mmengine (about 0.4 s each) are marked ``slow``."""
import ast
import functools
import glob
import os.path as osp
import re

import pytest
from mmengine.config import Config

from mmlocal.testing import CONFIGS

FRAGMENTS = osp.join(CONFIGS, '_base_', 'local')
#: the keys a fragment may define: the optim_wrapper delta, or keys of ``local``
FRAGMENT_KEYS = {'local_learning', 'local_hilo'}
#: what a docstring cites: the reference notes, a paper table, a source file
SOURCE = re.compile(r'ALGORITHMS\.md|Table \d|github\.com|``[\w/.-]+\.py``')
#: a method chosen outside a fragment (``independent_method`` is a HiLo option)
METHOD_TYPE = re.compile(r'(?<!\w)method\s*=\s*dict\(\s*type\s*=')


def _configs():
    return sorted(glob.glob(osp.join(CONFIGS, '*.py')))


def _fragments():
    return sorted(glob.glob(osp.join(FRAGMENTS, '*.py')))


def _name(path):
    return osp.relpath(path, CONFIGS)


def _code(path):
    """The file without its docstrings (prose may quote any option)."""
    return re.sub(r'""".*?"""', '', open(path).read(), flags=re.S)


def _bases(path):
    """The repository files ``path`` lists in ``_base_`` (a package's
    ``scope::`` bases left out), read from its syntax tree."""
    for node in ast.parse(open(path).read()).body:
        if (isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name)
                and node.targets[0].id == '_base_'):
            value = ast.literal_eval(node.value)
            files = [value] if isinstance(value, str) else list(value)
            return [osp.normpath(osp.join(osp.dirname(path), f))
                    for f in files if '::' not in f]
    return []


def _chain(path):
    """Every repository file ``path`` inherits from, directly or not."""
    seen, todo = [], [path]
    while todo:
        for base in _bases(todo.pop()):
            if base not in seen:
                seen.append(base)
                todo.append(base)
    return seen


@functools.lru_cache(maxsize=None)
def _fragment(path):
    return Config.fromfile(path)


def _fragment_methods(path):
    """The method types the fragments in ``path``'s chain set."""
    return {_fragment(f).get('local_learning', {}).get('local', {}).get('method', {}).get('type')
            for f in _chain(path) if osp.dirname(f) == FRAGMENTS} - {None}


def _docstring(path):
    return ast.get_docstring(ast.parse(open(path).read())) or ''


def _local_configs():
    """Configs that train with local learning: a fragment in their chain, or
    ``local`` written in them or a config they inherit."""
    return [p for p in _configs()
            if any(osp.dirname(f) == FRAGMENTS for f in _chain(p))
            or any(re.search(r'\blocal\s*=|\.local\b', _code(f)) for f in [p] + _chain(p))]


def test_every_fragment_defines_one_known_key_and_cites_a_source():
    assert _fragments(), f'no fragments in {FRAGMENTS}'
    for path in _fragments():
        keys = set(_fragment(path).keys())
        assert len(keys) == 1 and keys <= FRAGMENT_KEYS, (
            f'{_name(path)} defines {sorted(keys)}: a fragment defines one of '
            f'{sorted(FRAGMENT_KEYS)} (see _base_/local/wrapper.py)')
        assert SOURCE.search(_docstring(path)), f'{_name(path)}: the docstring names no source'


def test_local_configs_get_one_method_from_fragments_and_name_a_source():
    configs = _local_configs()
    assert len(configs) >= 40
    for path in configs:
        methods = _fragment_methods(path)
        assert len(methods) == 1, (
            f'{_name(path)}: the fragments in its _base_ chain give the methods '
            f'{sorted(methods)}; list exactly one method fragment of _base_/local/')
        assert not METHOD_TYPE.search(_code(path)), (
            f'{_name(path)} chooses its method itself: take it from a fragment')
        assert SOURCE.search(_docstring(path)), (
            f'{_name(path)}: the docstring must name the paper table, source file '
            'or ALGORITHMS.md section this config reproduces')


def test_boilerplate_and_hilo_weights_are_written_once():
    """The wrapper's type and constructor are only in ``wrapper.py``, HiLo's
    weights 0.001 / 0.999 only in ``hilo.py``: a config that restates them
    keeps its own copy when the fragment changes."""
    once = {r'constructor\s*=': 'wrapper.py',
            r"type\s*=\s*'LocalLearningOptimWrapper'": 'wrapper.py',
            r'independent_weight\s*=\s*0\.001': 'hilo.py',
            r'cascade_weight\s*=\s*0\.999': 'hilo.py'}
    for pattern, owner in once.items():
        hits = [_name(p) for p in _configs() + _fragments() if re.search(pattern, _code(p))]
        assert hits == [osp.join('_base_', 'local', owner)], (pattern, hits)


def test_every_fragment_is_used():
    used = {f for path in _configs() for f in _chain(path)}
    unused = [_name(f) for f in _fragments() if f not in used]
    assert not unused, f'fragments no config uses: {unused}'


@pytest.fixture(scope='module')
def resolved():
    return {path: Config.fromfile(path) for path in _configs()}


@pytest.mark.slow
def test_resolved_configs_keep_no_fragment_key_and_train_the_fragments_method(resolved):
    local = set(_local_configs())
    for path, cfg in resolved.items():
        leaked = FRAGMENT_KEYS & set(cfg.keys())
        assert not leaked, (f'{_name(path)} keeps {sorted(leaked)}: take a fragment with '
                            "_base_.pop('<key>'), as _base_/local/wrapper.py shows")
        trained = cfg.get('optim_wrapper', {}).get('local')
        assert (trained is not None) == (path in local), _name(path)
        if trained is not None:
            assert {trained.method.type} == _fragment_methods(path), _name(path)
