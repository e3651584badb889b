"""tools/device/gpu_check.py in smoke mode on CPU: the GPU check's code
(configs, AMP variants, measurement, report) runs before a GPU machine does."""
import json
import os.path as osp

import mmlocal  # noqa: F401
import pytest

from checkout import load_tool


def gpu_check():
    return load_tool(osp.join('tools', 'device', 'gpu_check.py'))


def test_amp_variants_prefer_amp_optim_wrapper():
    tool = gpu_check()
    local = dict(type='LocalLearningOptimWrapper', constructor='LocalLearningOptimWrapperConstructor',
                 optimizer=dict(type='SGD', lr=0.1), local=dict(num_modules=4))
    [(s1, new)] = tool.amp_variants(local, 'bfloat16')
    assert (s1, new['type'], new['dtype']) == ('AmpOptimWrapper', 'AmpOptimWrapper', 'bfloat16')
    assert new['constructor'] == 'LocalLearningOptimWrapperConstructor' and 'amp' not in new
    e2e = dict(type='OptimWrapper', optimizer=dict(type='SGD', lr=0.1))
    assert [s for s, _ in tool.amp_variants(e2e, 'float16')] == ['AmpOptimWrapper']
    assert tool.amp_variants(e2e, None) == [('fp32', e2e)]


def _check(result, tool, only=None):
    def keep(name):
        return only is None or name in only

    methods = result['methods']
    assert [r['method'] for r in methods] == [m for m, _, _ in tool.METHODS if keep(m)]
    bad = {r['method']: r['status'] for r in methods if r['status'] != 'ok'}
    assert not bad, bad
    assert all(r['conv_dtype'] == 'float32' for r in methods)
    assert {r['modules'] for r in methods} == {1, 16}
    for title, rows in result['memory'].items():
        bad = {r['method']: r['status'] for r in rows if r['status'] != 'ok'}
        assert not bad, (title, bad)
        assert [r['method'] for r in rows] == [
            m for m, _, _ in tool.MEMORY[title.split(',')[0]][4] if keep(m)]
        e2e = rows[0]
        assert e2e['method'] == 'E2E' and e2e['boundaries'] == []
        assert all(r['peak_mb'] > 0 and r['step_s'] > 0 for r in rows)
        assert all(len(r["boundaries"]) in (3, 15, 54) for r in rows[1:])


def test_smoke_run_on_cpu(tmp_path):
    """E2E and DGL through both sections at tiny sizes."""
    tool = gpu_check()
    only = ['E2E', 'DGL']
    result = tool.main(['--device', 'cpu', '--smoke', '--out', str(tmp_path), '--only', *only])
    _check(result, tool, only)
    md = (tmp_path / 'gpu_check.md').read_text()
    assert '| DGL | fp32 | ok |' in md and 'ResNet-110 K=55, batch 2' in md
    assert json.loads((tmp_path / 'gpu_check.json').read_text())['smoke'] is True


@pytest.mark.slow
def test_smoke_run_of_every_case_on_cpu(tmp_path):
    tool = gpu_check()
    result = tool.main(['--device', 'cpu', '--smoke', '--out', str(tmp_path)])
    _check(result, tool)


def test_cuda_without_a_gpu_says_so(tmp_path):
    import torch
    if torch.cuda.is_available():
        pytest.skip('a GPU is visible')
    tool = gpu_check()
    with pytest.raises(SystemExit, match='--device cpu --smoke'):
        tool.main(['--out', str(tmp_path)])
