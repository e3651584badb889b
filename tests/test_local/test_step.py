"""A local-learning step waits for the device no more often than E2E's.

Host syncs (``aten._local_scalar_dense``: ``.item()``, ``float(t)``,
``bool(t)``, ``if t:``) are counted with a ``TorchDispatchMode`` inside one
``train_step`` of every method's config, run as under the Runner (local
losses read by ``LocalLossHook`` after the step), and compared with E2E's on
the same model and batch. Losses that are read after the step are still read
and checked (``test_errors.py``, ``test_engine/test_local_loss_hook.py``).
"""
import os.path as osp

import pytest
import torch

from mmlocal import apis

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
R32 = 'resnet32_cifar10_{}.py'
DLV3 = 'deeplabv3_r101_cityscapes_{}.py'
#: method -> config (ResNet-32 K=16: every method of the papers' CIFAR tables),
#: run on 2 images of 16x16 (host syncs do not depend on the sizes)
METHODS = {
    'DGL': R32.format('dgl_k16'),
    'PredSim': R32.format('predsim_k16'),
    'InfoPro': R32.format('infopro_k16'),
    'InfoPro-contrast': R32.format('infopro-contrast_k16'),
    'DGL+HiLo': R32.format('dgl_hilo_k16'),
    'DGL+HPFF': R32.format('dgl_hpff_k16'),
    'InfoPro+HPFF (quadrant PFF)': R32.format('infopro_hpff_k16'),
    'InfoPro+HPFF (paper PFF)': R32.format('infopro_hpff_k16_pff-paper'),
    'DGL+MLAAN': R32.format('dgl_mlaan_k16'),
    'InfoPro+MLAAN': R32.format('infopro_mlaan_k16'),
}
#: DeepLabV3 on a ResNet-18 and 64x128 crops: the heads and routing of the
#: R101 configs at a cost CI affords
SMALL_DLV3 = {'model.backbone.depth': 18, 'model.decode_head.in_channels': 512,
              'model.decode_head.channels': 64, 'model.auxiliary_head.in_channels': 256,
              'model.auxiliary_head.channels': 32}
SEG = {'InfoPro (segmentation)': DLV3.format('infopro_k4'),
       'InfoPro+HPFF (segmentation)': DLV3.format('infopro_hpff')}


@pytest.fixture(autouse=True, scope='module')
def one_thread():
    """Tiny ops: OpenMP threads only spin against each other (on a loaded
    2-core machine a step took 17 s with 2 threads, 0.3 s with one)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _syncs_in(fn) -> int:
    with apis.OpCounter() as counter:
        fn()
    return counter.syncs


def _count(path: str, options=None, batch_size: int = 2, input_size=(16, 16)):
    cfg = apis.load_config(osp.join(ROOT, 'configs', path), options)
    if cfg.model.get('pretrained') is not None:
        cfg.model.pretrained = None
    apis.fit_preprocessor_size(cfg, input_size)
    batch = apis.synthetic_batch(cfg, batch_size, input_size, seed=0)
    torch.manual_seed(0)
    model, wrapper = apis.build_model_and_optim_wrapper(cfg)
    apis.runner_mode(wrapper)
    apis.run_iteration(model, wrapper, batch)  # first step: optimizer state, MLAAN sync
    return apis.count_step(model, wrapper, batch, where=True)


@pytest.fixture(scope='module')
def e2e_r32():
    return _count(R32.format('e2e'))


@pytest.mark.parametrize('method', list(METHODS))
def test_no_host_sync_beyond_e2e(method, e2e_r32):
    local = _count(METHODS[method])
    assert local.syncs == e2e_r32.syncs, (
        f'{method}: {local.syncs} host syncs per step, E2E {e2e_r32.syncs}; '
        f'from {local.sync_sites}')


@pytest.mark.parametrize('method', list(SEG))
def test_no_host_sync_beyond_e2e_segmentation(method):
    e2e = _count(DLV3.format('e2e'), SMALL_DLV3, 2, (64, 128))
    options = dict(SMALL_DLV3, **{'optim_wrapper.local.split': 'blocks',
                                  'optim_wrapper.local.boundaries': None,
                                  'optim_wrapper.local.num_modules': 4})
    local = _count(SEG[method], options, 2, (64, 128))
    assert local.syncs == e2e.syncs, local.sync_sites


def test_losses_are_read_after_the_step():
    """Under the Runner the step leaves its local losses unread: the hook
    reads them after the step, one value per head loss."""
    cfg = apis.load_config(osp.join(ROOT, 'configs', METHODS['InfoPro']))
    batch = apis.synthetic_batch(cfg, 2, (16, 16), seed=0)
    model, wrapper = apis.build_model_and_optim_wrapper(cfg)
    apis.runner_mode(wrapper)
    model.train_step(batch, wrapper)
    losses = wrapper.pop_local_losses()
    heads = wrapper.learner.plan.heads
    assert len(losses) == 2 * len(heads)  # loss_cls and loss_recon of every head
    assert all(isinstance(v, torch.Tensor) and v.dim() == 0 for v in losses.values())
    assert wrapper.pop_local_losses() is None


# ------------------------------------------------------------ stage range
def _graded(module: torch.nn.Module) -> dict:
    return {n: p.grad.clone() for n, p in module.named_parameters() if p.grad is not None}


def _tiny_vit() -> torch.nn.Module:
    """mmpretrain's VisionTransformer (class token, final norm) at 32x32."""
    from mmengine.registry import DefaultScope
    from mmpretrain.registry import MODELS
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        torch.manual_seed(0)
        model = MODELS.build(dict(
            type='ImageClassifier',
            data_preprocessor=dict(type='ClsDataPreprocessor', num_classes=10,
                                   mean=[125.3, 123.0, 113.9], std=[63.0, 62.1, 66.7]),
            backbone=dict(type='VisionTransformer', img_size=32, patch_size=8, drop_rate=0.,
                          arch=dict(embed_dims=32, num_layers=4, num_heads=2,
                                    feedforward_channels=64)),
            head=dict(type='VisionTransformerClsHead', num_classes=10, in_channels=32,
                      loss=dict(type='CrossEntropyLoss'))))
    model.init_weights()
    return model


#: model -> (its builder, K)
STAGE_MODELS = {'resnet20': (lambda: __import__('mmlocal.testing', fromlist=['x'])
                             .build_classifier(depth=20, seed=0), 4),
                'vit': (_tiny_vit, 3)}


@pytest.fixture(scope='module', params=sorted(STAGE_MODELS))
def whole_step(request):
    """DGL on ResNet-20 (K=4) and a small ViT (K=3) and a real CIFAR-10
    batch: the gradients of one whole step and the input each module got."""
    from mmlocal.local import LocalLearner
    from mmlocal.testing import cifar_batch
    from mmlocal.testing.local import build_local
    build, k = STAGE_MODELS[request.param]
    model = build()
    model.train()
    wrapper = build_local(model, dict(num_modules=k, method=dict(type='DGL'),
                                      probe_size=(32, 32)))
    learner = LocalLearner.of(model)
    data = model.data_preprocessor(cifar_batch(8, seed=3), True)
    acts = {}  # j -> what module j + 1 received (the boundary's output, detached)
    handles = [model.get_submodule(b).register_forward_hook(
        lambda m, a, out, j=j: acts.__setitem__(j, out.detach().clone()))
        for j, b in enumerate(learner.plan.boundaries)]
    wrapper.zero_grad()
    with wrapper.optim_context(model):
        losses = model(**data, mode='loss')
    wrapper.backward(model.parse_losses(losses)[0])
    wrapper.finish_local_step()
    for h in handles:
        h.remove()
    grads = dict(model=_graded(model), heads=_graded(learner))
    return model, learner, data, acts, grads


@pytest.mark.parametrize('first,last', [(0, 1), (1, 2), (2, 3), (1, 1), (0, 0)])
def test_stage_step_equals_the_whole_steps_modules(whole_step, first, last):
    """A step given a stage range, run by the pipeline's stage forward on the
    activation the whole step gave module ``first``, yields exactly the
    whole step's gradients for the stage's modules and heads and none
    elsewhere; a stage before the last hands on module ``last``'s output."""
    from mmlocal.engine.pipeline_layout import tensor_owners
    from mmlocal.engine.pipeline_stage import StageForward
    from mmlocal.local.split import block_paths
    from mmlocal.local.step import StageRange
    model, learner, data, acts, want = whole_step
    if last >= learner.num_modules:
        pytest.skip(f'K={learner.num_modules}')
    stage = StageRange(first, last)
    blocks = block_paths(model)
    run = StageForward(model, 'backbone', blocks, learner.plan.boundaries, stage)
    model.zero_grad()
    learner.zero_grad()
    with learner.armed(backward=lambda loss: loss.backward(), stage=stage) as step:
        losses = run(data, step, acts.get(first - 1))
    if losses is not None:
        model.parse_losses(losses)[0].backward()
    step.finish()
    # the stages of a pipeline with this one: modules before it, it, modules after it
    mine = int(first > 0)
    stage_of = [mine - (m < first) + (m > last) for m in range(learner.num_modules)]
    owners = tensor_owners(model, learner, learner.plan, blocks, stage_of)
    for part, module, owner in (('model', model, owners[0]), ('heads', learner, owners[1])):
        got = _graded(module)
        own = sorted(n for n, _ in module.named_parameters() if owner[n] == mine)
        assert sorted(got) == own, f'{part}: gradients outside the stage {stage}'
        for n in own:
            assert torch.equal(got[n], want[part][n]), f'{part}.{n} differs from the whole step'
    if last < learner.num_modules - 1:
        assert losses is None and torch.equal(step.outgoing, acts[last])
    else:
        assert step.outgoing is None


def test_stage_range_is_checked():
    from mmlocal.local.step import StageRange
    assert 2 in StageRange(1, 2) and 0 not in StageRange(1, 2)
    with pytest.raises(ValueError, match='first <= last'):
        StageRange(2, 1)


def test_step_context_is_frozen_and_built_once_per_stage(whole_step):
    """The step reads only its context: fixed, one per stage range."""
    import dataclasses
    from mmlocal.local.step import StageRange
    _, learner, _, _, _ = whole_step
    whole = learner.context()
    assert whole is learner.context(StageRange(0, learner.num_modules - 1))
    assert learner.context(StageRange(1, 1)).stage == StageRange(1, 1)
    assert set(whole.heads) == {hp.key for hp in learner.plan.heads}
    assert all(whole.heads[hp.key] is learner.head(hp) for hp in learner.plan.heads)
    with pytest.raises(dataclasses.FrozenInstanceError):
        whole.plan = None
    with pytest.raises(TypeError):
        whole.heads['m1'] = None
