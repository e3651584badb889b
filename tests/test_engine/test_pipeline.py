"""Pipelined local learning is exact: N ticks of S gloo processes (one stage
each) plus the drain equal N steps of one process running the modules one
after the other, with the same seed, data order and learning-rate schedule.

BatchNorm trains in training mode here: unlike data parallelism, every stage
sees the whole batch, so even its batch statistics are the sequential run's.
"""
import datetime
import os
import os.path as osp

import pytest
import torch

from mmlocal.testing import build_classifier, cifar_batch, free_port

from mmlocal.local import LocalLearner, build_learner

B = 8
STEPS = 4
OPTIMIZER = dict(type='SGD', lr=0.05, momentum=0.9, weight_decay=5e-4)
DGL = dict(type='DGL')
CASES = {
    'dgl': dict(num_modules=4, method=DGL),
    'infopro': dict(num_modules=4, method=dict(type='InfoPro')),
}
CLIP = dict(max_norm=0.05)  # binds: the gradients' norms are ~0.5..5


def _optim(local: dict, stages: int = 0, clip: str = '') -> dict:
    local = dict(local, probe_size=(32, 32))
    if stages:
        local['pipeline'] = dict(stages=stages)
    cfg = dict(type='LocalLearningOptimWrapper',
               constructor='LocalLearningOptimWrapperConstructor',
               optimizer=OPTIMIZER, local=local)
    if clip:  # 'global': mmengine's clip; else the default, each local module by its own norm
        cfg['clip_grad'] = dict(CLIP, scope='global') if clip == 'global' else dict(CLIP)
    return cfg


def _clip_per_stage(wrapper, base: torch.nn.Module, stages: int) -> None:
    """One process clipping as a pipeline of ``stages`` does: each stage's
    parameters by the norm of their own gradients."""
    from mmlocal.engine.pipeline_layout import assign_stages, tensor_owners
    from mmlocal.local.config import PipelineConfig
    from mmlocal.local.split import block_paths
    learner = LocalLearner.of(base)
    blocks = block_paths(base)
    ranges = assign_stages(learner.plan, blocks, PipelineConfig(stages=stages))
    stage_of = [next(s for s, (a, b) in enumerate(ranges) if a <= m <= b)
                for m in range(learner.num_modules)]
    model_owner, head_owner = tensor_owners(base, learner, learner.plan, blocks, stage_of)
    groups = [[p for n, p in base.named_parameters() if model_owner[n] == s] +
              [p for n, p in learner.named_parameters() if head_owner[n] == s]
              for s in range(stages)]

    def clip() -> None:
        for group in groups:
            grads = [p for p in group if p.grad is not None]
            if grads:
                torch.nn.utils.clip_grad_norm_(grads, **CLIP)
    wrapper._clip_grad = clip


def _lr(i: int) -> float:
    """A schedule that changes every iteration: stages must follow the batch."""
    return OPTIMIZER['lr'] * 0.7**i


def _state(model: torch.nn.Module) -> dict:
    learner = LocalLearner.of(model)
    parts = dict(model=model, local_learner=learner)
    return {f'{name}.{k}': v.detach().clone()
            for name, part in parts.items() for k, v in part.state_dict().items()}


def train(name: str, rank: int = 0, world: int = 1, stages: int = 0, clip: str = ''):
    """STEPS steps of ResNet-20 on real CIFAR-10 batches; with ``stages`` the
    pipelined run (then drained and gathered). Ranks draw different initial
    weights: the wrapper and the learner must make them identical. ``clip``:
    'on' (clip_grad: each local module by its own norm), 'global' (mmengine's
    clip_grad over all parameters) or 'stage<S>'."""
    from mmengine.optim import build_optim_wrapper
    from mmlocal.engine import MMPipelineParallel
    base = build_classifier(depth=20, seed=rank)
    base.train()
    model = MMPipelineParallel(base) if stages else base
    torch.manual_seed(1000 + rank)
    wrapper = build_optim_wrapper(model, _optim(CASES[name], stages, clip=clip))
    if clip.startswith('stage'):
        _clip_per_stage(wrapper, base, int(clip[5:]))
    init = _state(base)
    losses = []
    for i in range(STEPS):
        for g in wrapper.optimizer.param_groups:  # as a per-iteration scheduler would
            g['lr'] = _lr(i)
        losses.append(model.train_step(cifar_batch(B, seed=i), wrapper))
    if stages:
        pipe = wrapper.pipeline
        pipe.flush(wrapper)
        stepped = wrapper.optimizer.state  # a momentum buffer: the rank stepped it
        learner = LocalLearner.of(base)
        own = sorted([f'model.{n}' for n, p in base.named_parameters() if p in stepped] +
                     [f'local_learner.{n}' for n, p in learner.named_parameters()
                      if p in stepped])
        owner = {**{f'model.{n}': s for n, s in pipe.model_owner.items()},
                 **{f'local_learner.{n}': s for n, s in pipe.head_owner.items()}}
        params = {f'model.{n}' for n, _ in base.named_parameters()} | \
            {f'local_learner.{n}' for n, _ in learner.named_parameters()}
        pipe.gather()
        return dict(init=init, final=_state(base), stage=pipe.stage, ranges=pipe.ranges,
                    stepped=own, owned=sorted(n for n in params if owner[n] == pipe.stage),
                    losses=losses)
    return dict(init=init, final=_state(base), losses=losses)


def _worker(rank: int, world: int, port: int, out_dir: str) -> None:
    import torch.distributed as dist
    os.environ.update(MASTER_ADDR='127.0.0.1', MASTER_PORT=str(port), RANK=str(rank),
                      WORLD_SIZE=str(world), LOCAL_RANK=str(rank))
    torch.set_num_threads(1)
    dist.init_process_group('gloo', timeout=datetime.timedelta(seconds=120))
    try:
        for name in CASES:
            torch.save(train(name, rank, world, stages=world),
                       osp.join(out_dir, f'{name}.rank{rank}.pth'))
        torch.save(train('dgl', rank, world, stages=world, clip='on'),
                   osp.join(out_dir, f'dgl_clip.rank{rank}.pth'))
        dist.barrier()  # no rank leaves while another still communicates
    finally:
        dist.destroy_process_group()


@pytest.fixture(scope='module', params=[2, 3], ids=['2stages', '3stages'])
def pipeline_results(request, tmp_path_factory):
    import torch.multiprocessing as mp
    world = request.param
    out = str(tmp_path_factory.mktemp(f'pipe{world}'))
    mp.spawn(_worker, args=(world, free_port(), out), nprocs=world, join=True)
    return world, out


@pytest.fixture(scope='module')
def sequential():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as each rank
    try:
        return {name: train(name) for name in CASES}
    finally:
        torch.set_num_threads(threads)


def _rel(got: torch.Tensor, want: torch.Tensor, scale: torch.Tensor) -> float:
    return ((got - want).norm() / (scale.norm() + 1e-12)).item()


def _max_rel(res: dict, ref: dict) -> float:
    return max(_rel(res['final'][k], w, w - ref['init'][k]) for k, w in ref['final'].items()
               if w.is_floating_point() and (w - ref['init'][k]).abs().max() > 0)


@pytest.mark.dist
@pytest.mark.slow
def test_pipeline_clips_each_stage_by_its_own_norm(pipeline_results):
    """Global-norm clipping cannot be exact in a pipeline (a batch's
    gradients exist on different stages at different ticks). clip_grad clips
    each local module by its own norm (local_clip.py), and modules do not
    span stages: the pipeline equals one process clipping that way, and
    measurably not one process clipping per stage or by the global norm."""
    world, out = pipeline_results
    got = torch.load(osp.join(out, 'dgl_clip.rank0.pth'), weights_only=False)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        per_module = train('dgl', clip='on')
        per_stage = train('dgl', clip=f'stage{world}')
        global_norm = train('dgl', clip='global')
    finally:
        torch.set_num_threads(threads)
    assert _max_rel(got, per_module) < 1e-4
    assert _max_rel(got, per_stage) > 1e-2
    assert _max_rel(got, global_norm) > 1e-2


@pytest.mark.dist
@pytest.mark.slow
@pytest.mark.parametrize('name', list(CASES))
def test_pipeline_equals_sequential(name, pipeline_results, sequential):
    world, out = pipeline_results
    ref = sequential[name]
    ranks = [torch.load(osp.join(out, f'{name}.rank{r}.pth'), weights_only=False)
             for r in range(world)]
    assert [r['stage'] for r in ranks] == list(range(world))
    assert set(ranks[0]['final']) == set(ref['final'])
    for r, res in enumerate(ranks):
        # a stage steps exactly the parameters it owns
        assert res['stepped'] == res['owned'], f'rank {r}'
        for key in ref['final']:
            assert torch.equal(res['init'][key], ref['init'][key]), f'rank {r} starts: {key}'
    moved = 0.
    for key, want in ref['final'].items():
        for r, res in enumerate(ranks):
            got = res['final'][key]
            if not want.is_floating_point():
                assert torch.equal(got, want), (r, key)
                continue
            step = want - ref['init'][key]
            moved = max(moved, step.abs().max().item())
            if step.abs().max() > 0:
                assert _rel(got, want, step) < 1e-4, (r, key, _rel(got, want, step))
            else:
                assert torch.equal(got, want), (r, key)
    assert moved > 1e-2  # training moved the weights
    # the last stage reports the task loss of batch t at tick t + S - 1
    last = ranks[-1]['losses']
    assert all(not d for d in last[:world - 1])
    for t in range(STEPS - world + 1):
        torch.testing.assert_close(last[t + world - 1]['loss'], ref['losses'][t]['loss'],
                                   rtol=1e-4, atol=1e-6)


def test_windows_crossing_a_stage_are_refused():
    """HiLo windows of k >= 2 reach the module before each stage's first:
    they would need a gradient sent upstream, so the layout is refused."""
    from mmlocal.engine.pipeline_layout import assign_stages, check_stage_windows
    from mmlocal.local.config import LocalConfigError, PipelineConfig
    from mmlocal.local.split import block_paths
    model = build_classifier(depth=20)
    learner = build_learner(model, dict(num_modules=4, method=DGL, probe_size=(32, 32),
                                        hilo=dict(cascade=2)))
    blocks = block_paths(model)
    ranges = assign_stages(learner.plan, blocks, PipelineConfig(stages=2))
    with pytest.raises(LocalConfigError, match='cross a pipeline stage boundary') as err:
        check_stage_windows(learner.plan, ranges)
    assert 'modules_per_stage' in str(err.value) and 'hilo.cascade=1' in str(err.value)
    learner.remove()
    # independent heads: every layout is allowed; stages follow the block counts
    learner = build_learner(model, dict(num_modules=4, method=DGL, probe_size=(32, 32)))
    for cfg, want in ((PipelineConfig(stages=2), [(0, 1), (2, 3)]),
                      (PipelineConfig(stages=2, modules_per_stage=(1, 3)), [(0, 0), (1, 3)]),
                      (PipelineConfig(stages=3, balance='modules'), [(0, 0), (1, 2), (3, 3)])):
        ranges = assign_stages(learner.plan, blocks, cfg)
        check_stage_windows(learner.plan, ranges)
        assert ranges == want, (cfg, ranges)
    with pytest.raises(LocalConfigError, match='sums to 5'):
        assign_stages(learner.plan, blocks, PipelineConfig(stages=2, modules_per_stage=(2, 3)))


def test_pipeline_config_is_checked():
    from mmlocal.local.config import LocalConfig, LocalConfigError
    cfg = LocalConfig.parse(dict(num_modules=4, pipeline=dict(stages=3)))
    assert cfg.pipeline.stages == 3 and cfg.pipeline.balance == 'blocks'
    with pytest.raises(LocalConfigError, match="no key 'stage'.*'stages'"):
        LocalConfig.parse(dict(num_modules=4, pipeline=dict(stage=2)))
    with pytest.raises(LocalConfigError, match='stages must be >= 1'):
        LocalConfig.parse(dict(num_modules=4, pipeline=dict(stages=0)))
    with pytest.raises(LocalConfigError, match='modules_per_stage must list 2'):
        LocalConfig.parse(dict(num_modules=4, pipeline=dict(stages=2, modules_per_stage=(4, ))))


# ---- inside mmengine's loops: tools/dist_train.sh, validation, checkpoints, --resume ----
ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
BASE_CONFIG = osp.join(ROOT, 'configs', 'resnet32_cifar10_dgl_k8.py')
CIFAR_MINI = osp.join(ROOT, 'data', 'cifar10_mini')
PIPELINE_DELTA = """
model_wrapper_cfg = dict(type='MMPipelineParallel')
custom_hooks = [dict(type='RandomStateHook'), dict(type='PipelineHook')]
train_dataloader = dict(sampler=dict(type='PipelineSampler', stages=2, shuffle=True))
optim_wrapper = dict(local=dict(pipeline=dict(stages=2)))
"""


def _options(epochs: int) -> list:
    opts = ['model.backbone.depth=20', 'default_hooks.checkpoint.interval=1',
            'default_hooks.logger.interval=1', 'randomness.seed=0',
            'optim_wrapper.optimizer.lr=0.05', f'train_cfg.max_epochs={epochs}']
    for split, n in (('train', 16), ('val', 8), ('test', 8)):
        opts += [f'{split}_dataloader.dataset.data_root={CIFAR_MINI}',
                 f'{split}_dataloader.dataset.indices={n}',
                 f'{split}_dataloader.batch_size=4',
                 f'{split}_dataloader.num_workers=0']
    return opts


def _run(cmd: list, **env) -> str:
    import subprocess
    out = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=400,
                         env=dict(os.environ, PYTHONPATH=ROOT, OMP_NUM_THREADS='1', **env))
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-5000:]
    return out.stdout + out.stderr


@pytest.mark.dist
@pytest.mark.slow
def test_dist_train_pipeline_with_resume_equals_one_process(tmp_path):
    """``tools/dist_train.sh CONFIG 2`` with the pipeline, one epoch, then
    ``--resume`` to two, equals one process without the pipeline doing the
    same: model, heads and optimizer state of ``epoch_2.pth``. The schedule
    changes every iteration (warm-up), BN trains, augmentation is random."""
    import sys
    if not osp.isdir(osp.join(CIFAR_MINI, 'train')):
        pytest.skip(f'bundled CIFAR-10 subset missing under {CIFAR_MINI}')
    config = tmp_path / 'pipeline2.py'
    config.write_text(f'_base_ = {BASE_CONFIG!r}\n' + PIPELINE_DELTA)
    ref_dir, pipe_dir = str(tmp_path / 'ref'), str(tmp_path / 'pipe')
    train = [sys.executable, osp.join(ROOT, 'tools', 'train.py'), BASE_CONFIG,
             '--work-dir', ref_dir]
    _run(train + ['--cfg-options', *_options(1)])
    _run(train + ['--resume', '--cfg-options', *_options(2)])

    def dist_train(*args):
        return _run(['bash', osp.join(ROOT, 'tools', 'dist_train.sh'), str(config), '2',
                     '--work-dir', pipe_dir, *args],
                    PYTHON=sys.executable, PORT=str(free_port()))

    log = dist_train('--cfg-options', *_options(1))
    assert 'pipeline: stage 0: m1..' in log and 'Epoch(train) [1][4/4]' in log
    # rank 0 (stage 0) logs the last stage's task loss and local losses too
    line = next(ln for ln in log.splitlines() if 'Epoch(train) [1][4/4]' in ln)
    assert ' loss: ' in line and 'local.m1.loss_cls' in line and 'local.m7.loss_cls' in line
    log = dist_train('--resume', '--cfg-options', *_options(2))
    assert 'Epoch(train) [2][4/4]' in log and 'Epoch(val) [2]' in log
    ref = torch.load(osp.join(ref_dir, 'epoch_2.pth'), weights_only=False)
    got = torch.load(osp.join(pipe_dir, 'epoch_2.pth'), weights_only=False)
    pairs = [(f'model.{k}', v, got['state_dict'][k]) for k, v in ref['state_dict'].items()]
    heads = ref['optimizer']['local_learner']
    pairs += [(f'heads.{k}', v, got['optimizer']['local_learner'][k]) for k, v in heads.items()]
    ref_state, got_state = ref['optimizer']['state'], got['optimizer']['state']
    assert set(ref_state) == set(got_state)  # every stage's momentum is in the checkpoint
    pairs += [(f'momentum.{i}', ref_state[i]['momentum_buffer'],
               got_state[i]['momentum_buffer']) for i in ref_state]
    for key, want, have in pairs:
        if want.is_floating_point():
            torch.testing.assert_close(have, want, rtol=1e-4, atol=1e-6, msg=key)
        else:
            assert torch.equal(have, want), key
    assert got['meta']['iter'] == ref['meta']['iter'] == 8
