"""tools/device/gpu_speed.py in smoke mode on CPU: the GPU speed check's code
(groups, interleaved timing, counts, profile, report) runs before a GPU
machine does."""
import json

import mmlocal  # noqa: F401
import pytest

from checkout import load_tool


def gpu_speed():
    return load_tool('tools/device/gpu_speed.py')


def _rows_ok(group):
    rows = group['results']
    bad = {n: r['error'] for n, r in rows.items() if 'error' in r}
    assert not bad, (group['title'], bad)
    assert group['reference'] == 'E2E'
    e2e = rows['E2E']
    for name, r in rows.items():
        assert r['syncs'] == e2e['syncs'], (group['title'], name)
        assert r['step_time_s'] > 0 and r['profile']['top']
    return rows


def test_smoke_allocator_section_on_cpu(tmp_path):
    tool = gpu_speed()
    report = tool.main(['--device', 'cpu', '--smoke', '--out', str(tmp_path),
                        '--sections', 'allocator', '--only', 'DGL'])
    assert [g['title'] for g in report['groups']] == [
        'ResNet-32 K=16, batch 2, cudnn.benchmark=False',
        'ResNet-32 K=16, batch 2, cudnn.benchmark=True']
    for group in report['groups']:
        assert list(_rows_ok(group)) == ['E2E', 'DGL']
    md = (tmp_path / 'gpu_speed.md').read_text()
    assert '## ResNet-32 K=16, batch 2, cudnn.benchmark=True' in md and '| DGL |' in md
    assert json.loads((tmp_path / 'gpu_speed.json').read_text())['smoke'] is True


@pytest.mark.slow
def test_smoke_step_section_on_cpu(tmp_path):
    """Every group of the step section, E2E and the batched PFF row."""
    tool = gpu_speed()
    report = tool.main(['--device', 'cpu', '--smoke', '--out', str(tmp_path),
                        '--sections', 'step', 'amp', '--only', 'DGL+HPFF, batched PFF', 'DGL'])
    titles = [g['title'] for g in report['groups']]
    assert titles == ['ResNet-32 K=16, batch 2', 'ResNet-110 K=55, batch 2',
                      'DeepLabV3-R101 K=4, batch 2']
    assert list(_rows_ok(report['groups'][0])) == ['E2E', 'DGL', 'DGL+HPFF, batched PFF']
    assert report['skipped'] == ['AMP float16: CUDA only', 'AMP bfloat16: CUDA only']


def test_cuda_without_a_gpu_says_so(tmp_path):
    import torch
    if torch.cuda.is_available():
        pytest.skip('a GPU is visible')
    with pytest.raises(SystemExit, match='--device cpu --smoke'):
        gpu_speed().main(['--out', str(tmp_path)])
