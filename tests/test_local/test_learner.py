"""Numerical guarantees of the local-learning engine (plain methods)."""
import copy

import pytest
import torch

from mmlocal.testing import (assert_grad_close, build_classifier, build_local, cifar_batch,
                             features, grads_of, head_loss, local_step_grads, module_param_names)
from mmlocal.local import LocalLearner
from mmlocal.utils.mmengine_adapter import run_forward


def _preprocess(model, batch):
    return model.data_preprocessor(batch, True)


@pytest.mark.parametrize('method', [dict(type='DGL'), dict(type='InfoPro'),
                                    dict(type='PredSim')])
def test_gradient_isolation(method):
    """Module j's gradients are those of its own local loss alone."""
    model = build_classifier(depth=20)
    wrapper = build_local(model, dict(num_modules=4, method=method, probe_size=(32, 32)))
    learner = LocalLearner.of(model)
    data = _preprocess(model, cifar_batch(8))
    got = local_step_grads(model, wrapper, data)
    targets = learner.adapter(data['inputs'], data['data_samples'], model.data_preprocessor)
    bounds = learner.boundaries
    for j in range(len(bounds)):
        names = module_param_names(model, bounds, j)
        assert names, f'module {j} has no parameters'
        h = features(model, data['inputs'], bounds[j - 1] if j else None, bounds[j])
        want = grads_of(head_loss(learner.heads[f'm{j + 1}'], h, targets), model, names)
        for n in names:
            assert_grad_close(got[n], want[n], msg=n)


def test_later_modules_do_not_change_earlier_gradients():
    model = build_classifier(depth=20)
    wrapper = build_local(model, dict(num_modules=4, method=dict(type='DGL'),
                                      probe_size=(32, 32)))
    data = _preprocess(model, cifar_batch(8))
    bounds = LocalLearner.of(model).boundaries
    first = module_param_names(model, bounds, 0)
    before = local_step_grads(model, wrapper, data)
    with torch.no_grad():  # change every later module and head
        for n, p in model.named_parameters():
            if n not in first and not n.startswith('local_learner.heads.m1.'):
                p.add_(torch.randn_like(p) * 0.1)
    after = local_step_grads(model, wrapper, data)
    for n in first:
        torch.testing.assert_close(after[n], before[n], msg=n)
    changed = [n for n in module_param_names(model, bounds, 3) if n.startswith('head.')]
    assert any(not torch.allclose(after[n], before[n]) for n in changed)


def _train(model, wrapper, batches):
    for b in batches:
        model.train_step(b, wrapper)
    return {n: p.detach().clone() for n, p in model.named_parameters()}


def test_k1_is_e2e():
    from mmengine.optim import build_optim_wrapper
    batches = [cifar_batch(8, seed=s) for s in range(3)]
    e2e = build_classifier(depth=20)
    local = copy.deepcopy(e2e)
    opt = dict(type='SGD', lr=0.1, momentum=0.9)
    e2e_params = _train(e2e, build_optim_wrapper(e2e, dict(optimizer=opt)), batches)
    wrapper = build_local(local, dict(num_modules=1, method=dict(type='DGL')))
    assert len(LocalLearner.of(local).heads) == 0
    local_params = _train(local, wrapper, batches)
    for n, p in e2e_params.items():
        torch.testing.assert_close(local_params[n], p, msg=n)


def _freeze_bn(model):
    for m in list(model.modules()) + list(LocalLearner.of(model).modules()):
        if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
            m.eval()


def test_gradient_accumulation_equals_full_batch():
    full = cifar_batch(8)
    halves = [{k: v[:4] for k, v in full.items()}, {k: v[4:] for k, v in full.items()}]
    a = build_classifier(depth=20)
    b = copy.deepcopy(a)
    local = dict(num_modules=4, method=dict(type='InfoPro'), probe_size=(32, 32))
    wa = build_local(a, local)
    wb = build_local(b, local, accumulative_counts=2)
    LocalLearner.of(b).load_state_dict(LocalLearner.of(a).state_dict())
    _freeze_bn(a)
    _freeze_bn(b)
    pa = _train(a, wa, [full])
    pb = _train(b, wb, halves)
    for n, p in pa.items():
        torch.testing.assert_close(pb[n], p, rtol=1e-4, atol=1e-6, msg=n)


def test_disarmed_outputs_equal_plain_model():
    model = build_classifier(depth=20)
    wrapper = build_local(model, dict(num_modules=8, method=dict(type='InfoPro'),
                                      probe_size=(32, 32)))
    _train(model, wrapper, [cifar_batch(8)])
    plain = build_classifier(depth=20, seed=1)
    state = {k: v for k, v in model.state_dict().items() if not k.startswith('local_learner.')}
    plain.load_state_dict(state)
    model.eval()
    plain.eval()
    data = model.data_preprocessor(cifar_batch(8, split='test'), False)
    with torch.no_grad():
        out = model(**data, mode='tensor')
        ref = plain(**data, mode='tensor')
        preds = model.val_step(cifar_batch(8, split='test'))
    torch.testing.assert_close(out, ref)
    assert len(preds) == 8


def test_local_losses_logged():
    from mmengine.logging import MessageHub
    model = build_classifier(depth=20)
    wrapper = build_local(model, dict(num_modules=4, method=dict(type='InfoPro'),
                                      probe_size=(32, 32)))
    model.train_step(cifar_batch(8), wrapper)
    scalars = MessageHub.get_current_instance().log_scalars
    for m in (1, 2, 3):
        assert f'train/local.m{m}.loss_cls' in scalars
        assert f'train/local.m{m}.loss_recon' in scalars


def test_memory_is_freed_between_modules():
    """After the forward, only the last module's graph is alive: earlier
    modules' outputs were freed by their immediate backward."""
    model = build_classifier(depth=20)
    wrapper = build_local(model, dict(num_modules=4, method=dict(type='DGL'),
                                      probe_size=(32, 32)))
    data = _preprocess(model, cifar_batch(8))
    with wrapper.optim_context(model):
        run_forward(model, data, mode='loss')
        assert LocalLearner.of(model).current_step.router.pending == {}


def test_vit_input_not_multiple_of_patch_size():
    """The token grid comes from the patch embedding, which pads: 40x40
    inputs with 16x16 patches give a 3x3 grid."""
    from mmengine.registry import init_default_scope
    from mmpretrain.registry import MODELS
    from mmpretrain.structures import DataSample
    init_default_scope('mmpretrain')
    torch.manual_seed(0)
    model = MODELS.build(dict(
        type='ImageClassifier',
        backbone=dict(type='VisionTransformer', arch='deit-tiny', img_size=32, patch_size=16),
        neck=None, head=dict(type='VisionTransformerClsHead', num_classes=10, in_channels=192)))
    wrapper = build_local(model, dict(num_modules=4, method=dict(type='DGL')))
    batch = cifar_batch(2)
    import torch.nn.functional as F
    batch['inputs'] = [F.interpolate(x[None].float(), size=(40, 40)).round().byte()[0]
                       for x in batch['inputs']]
    data = model.data_preprocessor(batch, True)
    with wrapper.optim_context(model):
        losses = run_forward(model, data, mode='loss')
        assert LocalLearner.of(model).current_step.token_grid == (3, 3)
    wrapper.update_params(model.parse_losses(losses)[0])
    assert torch.isfinite(model.parse_losses(losses)[0])


def test_heads_are_beside_the_model_state_and_legacy_keys_load():
    """The model's state_dict is the toolbox's (no local keys); a checkpoint
    of the old layout (heads as ``local_learner.*`` model keys) still loads
    its heads into the learner."""
    model = build_classifier(depth=20)
    wrapper = build_local(model, dict(num_modules=4, method=dict(type='DGL'),
                                      probe_size=(32, 32)))
    model.train_step(cifar_batch(8), wrapper)
    assert not any(k.startswith('local_learner.') for k in model.state_dict())
    assert 'local_learner' in wrapper.state_dict()
    heads = LocalLearner.of(model).state_dict()
    legacy = dict(model.state_dict(), **{f'local_learner.{k}': v for k, v in heads.items()})
    fresh = build_classifier(depth=20, seed=3)
    build_local(fresh, dict(num_modules=4, method=dict(type='DGL'), probe_size=(32, 32)))
    fresh.load_state_dict(legacy)  # strict: every legacy key is consumed
    for k, v in LocalLearner.of(fresh).state_dict().items():
        torch.testing.assert_close(v, heads[k], msg=k)


def test_build_learner_is_the_parts():
    """``build_learner`` gives the plan, probe, heads and BN momenta that the
    parts give when called one by one on the same model (same seed: the heads'
    initial weights too)."""
    from mmlocal.local import LocalConfig, block_paths, build_learner, resolve_boundaries
    from mmlocal.local.bn_updates import per_path_momentum
    from mmlocal.local.plan import build_head, plan_for
    from mmlocal.local.probe import probe_blocks
    from mmlocal.structures import TaskInfo
    local = dict(num_modules=4, method=dict(type='InfoPro'), probe_size=(32, 32),
                 hilo=dict(cascade=2), bn_updates='per-path')
    model = build_classifier(depth=20)
    ref = copy.deepcopy(model)
    old = {n: m.momentum for n, m in model.named_modules()
           if isinstance(m, torch.nn.BatchNorm2d)}
    torch.manual_seed(0)
    learner = build_learner(model, local)

    cfg = LocalConfig.parse(local)
    blocks = block_paths(ref)
    torch.manual_seed(0)
    probe = probe_blocks(ref, 'backbone', blocks, (32, 32))
    bounds = resolve_boundaries(ref, 4, None, cfg.split, 'backbone',
                                block_costs=lambda ps: [probe.costs[p] for p in ps])
    plan = plan_for(bounds, blocks, ref.backbone.depth, cfg)
    assert learner.plan == plan
    assert learner.probe.shapes == probe.shapes and learner.probe.costs == probe.costs
    task = TaskInfo('classification', 10)
    assert learner.task == task
    assert len(learner.cascade_heads) > 0  # both kinds of head are compared
    for hp in plan.heads:
        want = build_head(hp, probe.feature(bounds[hp.module]), task, ref)
        got = learner.head(hp)
        assert type(got) is type(want), hp.key
        assert got.state_dict().keys() == want.state_dict().keys(), hp.key
        for k, v in want.state_dict().items():
            torch.testing.assert_close(got.state_dict()[k], v, msg=f'{hp.key}.{k}')
    assert per_path_momentum(ref, blocks, bounds, plan.passes)  # cascade windows: some change
    moved = {n: m.momentum for n, m in ref.named_modules() if isinstance(m, torch.nn.BatchNorm2d)}
    assert {n: m.momentum for n, m in model.named_modules()
            if isinstance(m, torch.nn.BatchNorm2d)} == moved
    learner.remove()
    assert LocalLearner.of(model) is None
    assert {n: m.momentum for n, m in model.named_modules()
            if isinstance(m, torch.nn.BatchNorm2d)} == old


def _parts(model, local):
    """A hand-built learner's parts: blocks, probe, plan, heads by key, adapter."""
    from mmlocal.local import LocalConfig, block_paths, build_target_adapter
    from mmlocal.local.plan import build_head, plan_for
    from mmlocal.local.probe import probe_blocks
    from mmlocal.structures import TaskInfo
    cfg = LocalConfig.parse(local)
    blocks = block_paths(model)
    probe = probe_blocks(model, 'backbone', blocks, (32, 32))
    plan = plan_for(list(cfg.boundaries), blocks, model.backbone.depth, cfg)
    adapter = build_target_adapter(model)
    adapter.classes = 10
    heads = {hp.key: build_head(hp, probe.feature(plan.boundaries[hp.module]),
                                TaskInfo(adapter.task, 10), model) for hp in plan.heads}
    return cfg, blocks, probe, plan, heads, adapter


def test_learner_init_only_wires_what_it_is_given():
    """``LocalLearner.__init__`` runs no forward (no probe) and keeps the
    given plan, probe and head objects; the optim wrapper it is bound to
    trains exactly those heads."""
    from mmengine.optim import build_optim_wrapper
    model = build_classifier(depth=20)
    local = dict(boundaries=['backbone.layer1.1', 'backbone.layer3.0'], method=dict(type='DGL'))
    cfg, blocks, probe, plan, heads, adapter = _parts(model, local)
    calls = []
    handle = model.backbone.register_forward_pre_hook(lambda m, a: calls.append(1))
    learner = LocalLearner(model, cfg, blocks, probe, plan, heads, adapter)
    handle.remove()
    assert calls == []
    assert learner.plan is plan and learner.probe is probe and learner.cfg is cfg
    assert learner.boundaries == ['backbone.layer1.1', 'backbone.layer3.0']
    assert all(learner.head(hp) is heads[hp.key] for hp in plan.heads)
    assert LocalLearner.of(model) is learner
    wrapper = build_optim_wrapper(torch.nn.ModuleList([model, learner]), dict(
        type='LocalLearningOptimWrapper', optimizer=dict(type='SGD', lr=0.1)))
    wrapper.bind(learner)
    before = {k: p.detach().clone() for k, p in learner.named_parameters()}
    model.train_step(cifar_batch(8), wrapper)
    still = [k for k, p in learner.named_parameters() if torch.equal(p, before[k])]
    assert before and not still, still
    learner.remove()


def test_learner_refuses_what_it_cannot_wire():
    model = build_classifier(depth=20)
    local = dict(boundaries=['backbone.layer1.1', 'backbone.layer3.0'], method=dict(type='DGL'))
    cfg, blocks, probe, plan, heads, adapter = _parts(model, local)
    with pytest.raises(TypeError, match='build_learner'):
        LocalLearner(model, local, blocks, probe, plan, heads, adapter)
    with pytest.raises(ValueError, match=r"one head per HeadPlan key \['m1', 'm2'\]"):
        LocalLearner(model, cfg, blocks, probe, plan, {'m1': heads['m1']}, adapter)
    with pytest.raises(ValueError, match='not among the blocks'):
        LocalLearner(model, cfg, blocks[:3], probe, plan, heads, adapter)
    learner = LocalLearner(model, cfg, blocks, probe, plan, heads, adapter)
    with pytest.raises(RuntimeError, match=r'already has a local learner: remove\(\)'):
        LocalLearner(model, cfg, blocks, probe, plan, heads, adapter)
    learner.remove()


def _hooks(model) -> int:
    return sum(len(m._forward_hooks) + len(m._forward_pre_hooks) for m in model.modules())


def test_a_new_optim_wrapper_replaces_the_model_learner():
    """Building a second local optim wrapper on one model removes the first
    learner (its hooks) before probing: the engine needs no global look-up."""
    model = build_classifier(depth=20)
    first = build_local(model, dict(num_modules=4, method=dict(type='DGL'), probe_size=(32, 32)))
    second = build_local(model, dict(num_modules=2, method=dict(type='DGL'), probe_size=(32, 32)))
    assert first.learner._handles == [] and second.learner is not first.learner
    assert LocalLearner.of(model) is second.learner and second.learner.num_modules == 2
    alone = build_classifier(depth=20)
    build_local(alone, dict(num_modules=2, method=dict(type='DGL'), probe_size=(32, 32)))
    assert _hooks(model) == _hooks(alone) > 0
