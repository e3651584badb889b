"""``mmlocal.apis.speed``: counts and interleaved timing of real configs
(ResNet-20 on 2 synthetic 16x16 images, one thread)."""
import os.path as osp

import pytest
import torch

from mmlocal import apis

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
E2E = osp.join(ROOT, 'configs', 'resnet32_cifar10_e2e.py')
DGL = osp.join(ROOT, 'configs', 'resnet32_cifar10_dgl_k8.py')
HPFF = osp.join(ROOT, 'configs', 'resnet32_cifar10_dgl_hpff_k16.py')


@pytest.fixture(autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def test_parse_spec():
    assert apis.parse_spec('a/b_e2e.py') == ('a/b_e2e.py', {}, 'b_e2e')
    path, options, name = apis.parse_spec('c/x.py,optim_wrapper.local.pff.mode=batched,a.b=2')
    assert (path, options) == ('c/x.py', {'optim_wrapper.local.pff.mode': 'batched', 'a.b': 2})
    assert name == 'x [mode=batched, b=2]'
    with pytest.raises(ValueError, match='key=value'):
        apis.parse_spec('x.py,batched')


def test_benchmark_speed_counts_and_ratios():
    result = apis.benchmark_speed(
        [DGL, E2E, HPFF + ',optim_wrapper.local.pff.mode=batched,optim_wrapper.local.num_modules=8'],
        2, rounds=2, warmup=1,
        synthetic=True, input_size=(16, 16), cfg_options={'model.backbone.depth': 20},
        log=None)
    rows = result['results']
    assert result['reference'] == 'resnet32_cifar10_e2e'
    e2e, dgl = rows['resnet32_cifar10_e2e'], rows['resnet32_cifar10_dgl_k8']
    hpff = rows['resnet32_cifar10_dgl_hpff_k16 [mode=batched, num_modules=8]']
    assert e2e['time_ratio'] == 1.0 and len(dgl['step_times_s']) == 2
    assert dgl['syncs'] == hpff['syncs'] == e2e['syncs']
    assert e2e['ops'] < dgl['ops'] < hpff['ops']
    assert e2e['gflops'] < dgl['gflops'] < hpff['gflops']
    table = apis.speed_table(result)
    assert '| resnet32_cifar10_dgl_k8 |' in table and 'Ratios are to resnet32_cifar10_e2e' in table


def test_details_and_isolated_errors():
    """``details``: a profile of one iteration (on the CPU: the top aten ops);
    ``isolate``: a config that fails to build is a row with its error."""
    result = apis.benchmark_speed(
        [E2E, (DGL, {'optim_wrapper.local.num_modules': 99}, 'too many modules')], 2,
        rounds=1, synthetic=True, input_size=(16, 16), details=True, isolate=True,
        cfg_options={'model.backbone.depth': 20}, log=None)
    rows = result['results']
    assert 'K must be between' in rows['too many modules']['error']
    top = rows['resnet32_cifar10_e2e']['profile']['top']
    assert top and all(name.startswith('aten::') and ms >= 0 for name, ms in top)
    assert rows['resnet32_cifar10_e2e']['memory'] == {}  # CUDA allocator only
    table = apis.speed_table(result)
    assert '| too many modules | ValueError' in table and 'Top aten ops' in table
