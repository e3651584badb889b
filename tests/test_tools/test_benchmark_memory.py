"""tools/analysis/benchmark_memory.py as a user runs it: two of the
project's configs (ResNet-20) on the bundled CIFAR-10 subset, on CPU."""
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
TOOL = osp.join(ROOT, 'tools', 'analysis', 'benchmark_memory.py')
DATA = osp.join(ROOT, 'data', 'cifar10_mini')
E2E = osp.join(ROOT, 'configs', 'resnet32_cifar10_e2e.py')
DGL = osp.join(ROOT, 'configs', 'resnet32_cifar10_dgl_k8.py')


def run(*args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=ROOT, OMP_NUM_THREADS='1')
    return subprocess.run([sys.executable, TOOL, *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300)


def test_cli_writes_table_and_json(tmp_path):
    if not osp.isdir(osp.join(DATA, 'train')):
        pytest.skip(f'bundled CIFAR-10 subset missing under {DATA}')
    out_json, out_md = tmp_path / 'mem.json', tmp_path / 'mem.md'
    out = run(DGL, E2E, '--batch-size', '8', '--iters', '1', '--warmup', '0',
              '--device', 'cpu', '--threads', '1', '--out-json', str(out_json),
              '--out-md', str(out_md), '--cfg-options', 'model.backbone.depth=20',
              f'train_dataloader.dataset.data_root={DATA}')
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.startswith('machine: cpu=')
    assert '[1/1] resnet32_cifar10_dgl_k8: peak ' in out.stdout
    saved = json.loads(out_json.read_text())
    assert saved['reference'] == 'resnet32_cifar10_e2e'
    assert saved['settings']['inputs'] == 'dataset, first (32, 32)'
    assert saved['settings']['cfg_options']['model.backbone.depth'] == 20
    rows = saved['results']
    assert rows['resnet32_cifar10_dgl_k8']['peak_mb'] < rows['resnet32_cifar10_e2e']['peak_mb']
    md = out_md.read_text()
    assert md in out.stdout
    assert '| resnet32_cifar10_e2e | ' in md and '| 1.00 |' in md


def test_cli_refuses_bad_counts():
    out = run(E2E, '--batch-size', '0')
    assert out.returncode == 2
    assert '--batch-size, --iters and --repeat must be >= 1' in out.stderr
