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


def test_benchmark_accuracy_merge_and_gap(accuracy_run, tmp_path):
    import benchmark_accuracy
    work, rows = accuracy_run
    assert all(r['test_images'] == 32 for r in rows)
    table = (work / 'acc.md').read_text()
    assert '| test error (%) | ± s.e. |' in table
    se = benchmark_accuracy.standard_error(rows[0])
    p = rows[0]['test_error'] / 100
    assert se == pytest.approx(100 * (p * (1 - p) / 32) ** 0.5)
    # rows of parallel runs tabulate together; other schedules are refused
    merged = benchmark_accuracy.main([
        '--from-json', str(work / 'acc.json'), '--out-md', str(tmp_path / 'm.md')])
    assert merged == rows
    saved = json.loads((work / 'acc.json').read_text())
    saved['args']['epochs'] = 2
    other = tmp_path / 'other.json'
    other.write_text(json.dumps(saved))
    with pytest.raises(SystemExit, match='another schedule'):
        benchmark_accuracy.main(['--from-json', str(work / 'acc.json'), str(other)])
    with pytest.raises(SystemExit):
        benchmark_accuracy.main([E2E, '--from-json', str(other)])
    # the share of the DGL->E2E gap: 0% at DGL, 100% at E2E
    fake = [dict(name='e2e', test_error=10.), dict(name='dgl', test_error=20.),
            dict(name='hpff', test_error=15.), dict(name='mlaan', test_error=9.)]
    assert benchmark_accuracy.gap_closed(fake, 'e2e', 'dgl') == {
        'e2e': 100., 'dgl': 0., 'hpff': 50., 'mlaan': 110.}
    assert benchmark_accuracy.gap_closed(fake, 'e2e', 'nope') == {}
    for r in fake:
        r.update(peak_memory_mb=None, train_time_s=1.)
    md = benchmark_accuracy.markdown(fake)
    assert 'closes dgl->e2e gap |' in md and '| hpff | 15.00 | - | - | - | 1 | 50% |' in md
