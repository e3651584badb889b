"""``GradientSynchronizer``: averages over real gloo ranks (2 processes on
CPU), flat buckets of mixed dtypes, parameters used on some ranks or none,
the overlap's calibration and its refusal of a late gradient; and what it
does in one process.

The ranks import this module: it imports only torch at the top, and the
ranks load ``grad_sync.py`` alone (it needs nothing of mmlocal), which
halves the CPU of starting them (no toolbox import per rank).
"""
import datetime
import importlib.util
import os
import os.path as osp

import pytest
import torch

WORLD = 2


def _synchronizer_class():
    """``GradientSynchronizer`` from the package's own file, without
    importing the package (the ranks); the tests in this process import it
    as usual."""
    root = importlib.util.find_spec('mmlocal').submodule_search_locations[0]
    spec = importlib.util.spec_from_file_location('_grad_sync',
                                                  osp.join(root, 'engine', 'grad_sync.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.GradientSynchronizer


def check_synchronizer(rank: int) -> dict:
    """Unused parameters: used on one rank -> averaged with zeros; on no
    rank -> grad stays None; the overlap refuses a gradient that arrives
    after its parameter's all-reduce was launched."""
    GradientSynchronizer = _synchronizer_class()
    a, b, c = (torch.nn.Parameter(torch.zeros(3)) for _ in range(3))
    d = torch.nn.Parameter(torch.zeros(2, dtype=torch.float64))
    a.grad = torch.full((3, ), float(rank + 1))
    if rank == 0:
        b.grad = torch.full((3, ), 4.)
    d.grad = torch.full((2, ), 10. * (rank + 1), dtype=torch.float64)
    GradientSynchronizer([a, b, c, d], bucket_bytes=8).sync()  # tiny buckets: an all-reduce each
    result = dict(a=a.grad.clone(), b=b.grad.clone(), c=c.grad, d=d.grad.clone())

    # one bucket holding both dtypes' parameters would mix them: they are apart
    e, f = torch.nn.Parameter(torch.zeros(2)), torch.nn.Parameter(torch.zeros(2).double())
    e.grad, f.grad = torch.full((2, ), float(rank)), torch.full((2, ), 2. * rank).double()
    GradientSynchronizer([e, f]).sync()
    result.update(e=e.grad.clone(), f=f.grad.clone())

    p, q = torch.nn.Parameter(torch.ones(2)), torch.nn.Parameter(torch.ones(2))
    sync = GradientSynchronizer([p, q], overlap=True)
    for it in range(2):  # calibrate: p final after module 0, q at the step
        sync.begin(will_step=True)
        (p * (rank + 1)).sum().backward()
        sync.module_done(0)
        (q * 2).sum().backward()
        if it == 1:  # late gradient for p, already launched
            try:
                (p * 3).sum().backward()
            except RuntimeError as err:
                result['late'] = str(err)
        sync.sync()
        result[f'p{it}'] = p.grad.clone()
        result[f'q{it}'] = q.grad.clone()
        p.grad = q.grad = None
    result['early'] = sync.early_fraction
    result['calls'] = sync.sync_calls
    return result


def _worker(rank: int, world: int, port: int, out_dir: str) -> None:
    import torch.distributed as dist
    os.environ.update(MASTER_ADDR='127.0.0.1', MASTER_PORT=str(port), RANK=str(rank),
                      WORLD_SIZE=str(world), LOCAL_RANK=str(rank))
    torch.set_num_threads(1)
    dist.init_process_group('gloo', timeout=datetime.timedelta(seconds=120))
    try:
        torch.save(check_synchronizer(rank), osp.join(out_dir, f'sync.rank{rank}.pth'))
    finally:
        dist.destroy_process_group()


@pytest.fixture(scope='module')
def sync_results(tmp_path_factory):
    import torch.multiprocessing as mp
    from mmlocal.testing import free_port
    out = str(tmp_path_factory.mktemp('grad_sync'))
    mp.spawn(_worker, args=(WORLD, free_port(), out), nprocs=WORLD, join=True)
    return [torch.load(osp.join(out, f'sync.rank{r}.pth')) for r in range(WORLD)]


@pytest.mark.dist
def test_unused_gradients_and_dtypes_average_as_ddp(sync_results):
    for res in sync_results:
        torch.testing.assert_close(res['a'], torch.full((3, ), 1.5))
        torch.testing.assert_close(res['b'], torch.full((3, ), 2.))  # zeros on rank 1
        assert res['c'] is None  # unused everywhere: as one process would leave it
        torch.testing.assert_close(res['d'], torch.full((2, ), 15., dtype=torch.float64))
        torch.testing.assert_close(res['e'], torch.full((2, ), 0.5))
        assert res['f'].dtype == torch.float64
        torch.testing.assert_close(res['f'], torch.full((2, ), 1., dtype=torch.float64))


@pytest.mark.dist
def test_overlap_launches_early_and_refuses_late_gradients(sync_results):
    for res in sync_results:
        for it in range(2):
            torch.testing.assert_close(res[f'p{it}'], torch.full((2, ), 1.5))
            torch.testing.assert_close(res[f'q{it}'], torch.full((2, ), 2.))
        assert res['early'] == 0.5  # p (2 of 4 elements) goes before the step
        assert 'overlap_grad_sync=False' in res['late']
        assert res['calls'] == 2


def test_one_process_leaves_gradients_alone():
    from mmlocal.engine.grad_sync import GradientSynchronizer
    p = torch.nn.Parameter(torch.zeros(3))
    p.grad = torch.arange(3.)
    sync = GradientSynchronizer([p], overlap=True)
    sync.begin(will_step=True)
    sync.module_done(0)
    sync.sync()
    torch.testing.assert_close(p.grad, torch.arange(3.))
    assert sync.sync_calls == 0 and sync.early_fraction == 0.


def test_frozen_and_repeated_parameters_are_skipped_and_sparse_refused():
    from mmlocal.engine.grad_sync import GradientSynchronizer
    a, b = torch.nn.Parameter(torch.zeros(2)), torch.nn.Parameter(torch.zeros(2))
    b.requires_grad_(False)
    assert GradientSynchronizer([a, b, a]).params == [a]
    sparse = torch.nn.Parameter(torch.zeros(3).to_sparse())
    with pytest.raises(NotImplementedError, match='sparse'):
        GradientSynchronizer([sparse])
