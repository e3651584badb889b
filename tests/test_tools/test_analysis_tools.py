"""Tiny real runs of the analysis tools (accuracy benchmark, memory vs K,
layer-wise probe) on the bundled CIFAR-10 subset."""
import json
import os.path as osp
import sys

import pytest

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
sys.path.insert(0, osp.join(ROOT, 'tools', 'analysis'))
DATA = osp.join(ROOT, 'data', 'cifar10_mini')
E2E = osp.join(ROOT, 'configs', 'resnet32_cifar10_e2e.py')
DGL = osp.join(ROOT, 'configs', 'resnet32_cifar10_dgl_k8.py')


@pytest.fixture(scope='module')
def accuracy_run(tmp_path_factory):
    import benchmark_accuracy
    work = tmp_path_factory.mktemp('acc')
    rows = benchmark_accuracy.main([
        E2E, DGL, '--names', 'e2e', 'dgl', '--data-root', DATA, '--epochs', '1',
        '--batch-size', '16', '--lr', '0.05', '--train-subset', '64', '--test-subset', '32',
        '--num-workers', '0', '--memory-iters', '1', '--work-dir', str(work),
        '--out-md', str(work / 'acc.md'), '--out-json', str(work / 'acc.json')])
    return work, rows


def test_benchmark_accuracy(accuracy_run):
    work, rows = accuracy_run
    assert [r['name'] for r in rows] == ['e2e', 'dgl']
    for r in rows:
        assert 0 <= r['test_error'] <= 100 and r['train_time_s'] > 0
    # local learning at K=8 needs less memory than E2E at the same batch
    assert rows[1]['peak_memory_mb'] < rows[0]['peak_memory_mb']
    table = (work / 'acc.md').read_text()
    assert '| dgl |' in table and 'memory vs E2E' in table
    saved = json.loads((work / 'acc.json').read_text())
    assert len(saved['rows']) == 2 and 'cpu' in saved['machine']


def test_layerwise_probe(accuracy_run, tmp_path):
    import layerwise_probe
    work, _ = accuracy_run
    ckpt = sorted((work / 'dgl').glob('epoch_*.pth'))[-1]
    rows = layerwise_probe.main([
        f'dgl={DGL}:{ckpt}', '--num-modules', '4', '--data-root', DATA,
        '--train-subset', '40', '--test-subset', '20', '--batch-size', '20',
        '--probe-epochs', '2', '--out-prefix', str(tmp_path / 'probe')])
    assert len(rows[0]['accuracy']) == 4  # 3 boundaries + the backbone output
    assert all(0 <= a <= 100 for a in rows[0]['accuracy'])
    assert (tmp_path / 'probe.png').stat().st_size > 1000


def test_plot_memory(tmp_path):
    import plot_memory
    out = plot_memory.main([
        E2E, '--methods', f'dgl={DGL}', '--ks', '2', '8', '--batch-size', '8',
        '--iters', '1', '--data-root', DATA, '--out-prefix', str(tmp_path / 'mem')])
    rows = out['results']['dgl']
    assert [r['k'] for r in rows] == [2, 8]
    # more modules, less memory; both below E2E
    assert rows[1]['peak_mb'] < rows[0]['peak_mb'] < out['e2e']['peak_mb']
    assert (tmp_path / 'mem.png').stat().st_size > 1000
    assert '| dgl | 8 |' in (tmp_path / 'mem.md').read_text()
