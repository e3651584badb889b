"""tools/analysis/benchmark_speed.py as a user runs it: two of the project's
configs (ResNet-20) on synthetic CIFAR-sized images, on CPU, one thread."""
import json
import os
import os.path as osp
import subprocess
import sys

import pytest

# a subprocess of the tool: 15 s or more on a busy 2-core machine
# (tests/test_apis/test_speed.py has the in-process tests)
pytestmark = pytest.mark.slow

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
TOOL = osp.join(ROOT, 'tools', 'analysis', 'benchmark_speed.py')
E2E = osp.join(ROOT, 'configs', 'resnet32_cifar10_e2e.py')
DGL = osp.join(ROOT, 'configs', 'resnet32_cifar10_dgl_k8.py')


def test_cli_writes_table_and_json(tmp_path):
    out_json, out_md = tmp_path / 'speed.json', tmp_path / 'speed.md'
    env = dict(os.environ, PYTHONPATH=ROOT, OMP_NUM_THREADS='1')
    out = subprocess.run(
        [sys.executable, TOOL, E2E, DGL + ',optim_wrapper.local.recompute=False',
         '--batch-size', '4', '--synthetic', '--input-size', '32', '32', '--rounds', '2',
         '--device', 'cpu', '--out-json', str(out_json), '--out-md', str(out_md),
         '--cfg-options', 'model.backbone.depth=20'],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.startswith('machine: cpu=')
    assert 'torch_threads=1' in out.stdout.splitlines()[0]
    saved = json.loads(out_json.read_text())
    rows = saved['results']
    assert list(rows) == ['resnet32_cifar10_e2e', 'resnet32_cifar10_dgl_k8 [recompute=False]']
    assert rows['resnet32_cifar10_e2e']['syncs'] == rows[
        'resnet32_cifar10_dgl_k8 [recompute=False]']['syncs']
    assert '| resnet32_cifar10_dgl_k8 [recompute=False] |' in out_md.read_text()
