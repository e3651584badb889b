"""Tiny real runs of the analysis tools (accuracy benchmark, memory vs K,
layer-wise probe, PFF head memory) on the bundled CIFAR-10 subset, run as a
user runs them."""
import json
import os
import os.path as osp
import subprocess
import sys

import pytest

# subprocesses of the tools, as a user runs them: each takes 15 s or more on a
# busy 2-core machine (mmlocal.apis has the in-process tests)
pytestmark = pytest.mark.slow

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
ANALYSIS = osp.join(ROOT, 'tools', 'analysis')
DATA = osp.join(ROOT, 'data', 'cifar10_mini')
E2E = osp.join(ROOT, 'configs', 'resnet32_cifar10_e2e.py')
DGL = osp.join(ROOT, 'configs', 'resnet32_cifar10_dgl_k8.py')


def tool(name: str, *args, check: bool = True) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=ROOT, OMP_NUM_THREADS='1')
    out = subprocess.run([sys.executable, osp.join(ANALYSIS, name), *map(str, args)],
                         cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    if check:
        assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-5000:]
    return out


@pytest.fixture(scope='module')
def accuracy_run(tmp_path_factory):
    if not osp.isdir(osp.join(DATA, 'train')):
        pytest.skip(f'bundled CIFAR-10 subset missing under {DATA}')
    work = tmp_path_factory.mktemp('acc')
    tool('benchmark_accuracy.py', E2E, DGL, '--names', 'e2e', 'dgl', '--data-root', DATA,
         '--epochs', '1', '--batch-size', '16', '--lr', '0.05', '--train-subset', '64',
         '--test-subset', '32', '--num-workers', '0', '--memory-iters', '1',
         '--work-dir', work, '--out-md', work / 'acc.md', '--out-json', work / 'acc.json')
    return work, json.loads((work / 'acc.json').read_text())['rows']


def test_benchmark_accuracy(accuracy_run):
    work, rows = accuracy_run
    assert [r['name'] for r in rows] == ['e2e', 'dgl']
    for r in rows:
        assert 0 <= r['test_error'] <= 100 and r['train_time_s'] > 0
        assert r['test_images'] == 32
    # local learning at K=8 needs less memory than E2E at the same batch
    assert rows[1]['peak_memory_mb'] < rows[0]['peak_memory_mb']
    table = (work / 'acc.md').read_text()
    assert '| dgl |' in table and 'memory vs E2E' in table
    assert '| test error (%) | ± s.e. |' in table
    p = rows[0]['test_error'] / 100
    assert f"| e2e | {rows[0]['test_error']:.2f} | {100 * (p * (1 - p) / 32) ** 0.5:.2f} |" \
        in table
    saved = json.loads((work / 'acc.json').read_text())
    assert 'cpu' in saved['machine']


def test_layerwise_probe(accuracy_run, tmp_path):
    work, _ = accuracy_run
    ckpt = sorted((work / 'dgl').glob('epoch_*.pth'))[-1]
    tool('layerwise_probe.py', f'dgl={DGL}:{ckpt}', '--num-modules', '4', '--data-root', DATA,
         '--train-subset', '40', '--test-subset', '20', '--batch-size', '20',
         '--probe-epochs', '2', '--out-prefix', tmp_path / 'probe')
    rows = json.loads((tmp_path / 'probe.json').read_text())['rows']
    assert len(rows[0]['accuracy']) == 4  # 3 boundaries + the backbone output
    assert all(0 <= a <= 100 for a in rows[0]['accuracy'])
    assert (tmp_path / 'probe.png').stat().st_size > 1000


def test_plot_memory(tmp_path):
    tool('plot_memory.py', E2E, '--methods', f'dgl={DGL}', '--ks', '2', '8',
         '--batch-size', '8', '--iters', '1', '--data-root', DATA,
         '--out-prefix', tmp_path / 'mem')
    out = json.loads((tmp_path / 'mem.json').read_text())
    rows = out['results']['dgl']
    assert [r['k'] for r in rows] == [2, 8]
    # more modules, less memory; both below E2E
    assert rows[1]['peak_mb'] < rows[0]['peak_mb'] < out['e2e']['peak_mb']
    assert (tmp_path / 'mem.png').stat().st_size > 1000
    assert '| dgl | 8 |' in (tmp_path / 'mem.md').read_text()


def test_benchmark_accuracy_merge(accuracy_run, tmp_path):
    """Rows of parallel runs tabulate together; other schedules are refused."""
    work, rows = accuracy_run
    tool('benchmark_accuracy.py', '--from-json', work / 'acc.json',
         '--out-json', tmp_path / 'm.json')
    assert json.loads((tmp_path / 'm.json').read_text())['rows'] == rows
    saved = json.loads((work / 'acc.json').read_text())
    saved['args']['epochs'] = 2
    other = tmp_path / 'other.json'
    other.write_text(json.dumps(saved))
    out = tool('benchmark_accuracy.py', '--from-json', work / 'acc.json', other, check=False)
    assert out.returncode != 0 and 'another schedule' in out.stderr
    out = tool('benchmark_accuracy.py', E2E, '--from-json', other, check=False)
    assert out.returncode == 2 and 'not both' in out.stderr


def test_benchmark_accuracy_gap(tmp_path):
    """The share of the DGL->E2E gap: 0% at DGL, 100% at E2E."""
    rows = [dict(name='e2e', test_error=10.), dict(name='dgl', test_error=20.),
            dict(name='hpff', test_error=15.), dict(name='mlaan', test_error=9.)]
    for r in rows:
        r.update(peak_memory_mb=None, train_time_s=1.)
    args = dict(data_root=None, epochs=1, batch_size=8, lr=0.1, warmup_epochs=1.,
                train_subset=None, test_subset=None, seed=0, cfg_options=None)
    saved = tmp_path / 'rows.json'
    saved.write_text(json.dumps(dict(machine={'cpu': 'x'}, args=args, rows=rows)))
    out = tool('benchmark_accuracy.py', '--from-json', saved, '--out-md', tmp_path / 'g.md')
    md = (tmp_path / 'g.md').read_text()
    assert 'closes dgl->e2e gap |' in md
    assert '| hpff | 15.00 | - | - | - | 1 | 50% |' in md
    assert '| mlaan | 9.00 | - | - | - | 1 | 110% |' in md
    assert '| dgl | 20.00 | - | - | - | 1 | 0% |' in md
    out = tool('benchmark_accuracy.py', '--from-json', saved, '--gap', 'e2e', 'nope')
    assert 'gap' not in out.stdout.split('\n\n', 1)[1]


def test_benchmark_pff_cli():
    out = tool('benchmark_pff.py', '--method', 'DGL', '--channels', '8', '--size', '8', '8',
               '--batch', '8', '--patches', '1', '2')
    lines = [line for line in out.stdout.splitlines() if line.startswith('| ')]
    assert lines[0].startswith('| PFF patches |')
    assert lines[1].startswith('| 1x1 |') and lines[1].endswith('| 1.00x |')
    assert lines[2].startswith('| 2x2 |')


def test_flops_local_heads_splits_the_step():
    """The tool runs as documented; the heads' share and the rest add up to
    the step (this tool's import once broke unseen)."""
    import re
    cfg = osp.join(ROOT, 'configs', 'resnet32_cifar10_dgl_hpff_k16.py')
    out = tool('flops_local_heads.py', cfg, '--batch-size', '4', '--cfg-options',
               f'train_dataloader.dataset.data_root={DATA}', 'optim_wrapper.local.recompute=False')
    total, heads, rest = map(float, re.search(
        r'([\d.]+) GFLOPs per step; local heads ([\d.]+), the rest \(backbone, routing, '
        r'task head\) ([\d.]+)', out.stdout).groups())
    assert heads > 0 and rest > 0 and abs(total - heads - rest) < 0.02
