"""Peak costs of a local step measured on a real model, against the
allocator's peak of real training steps (CPU tracker)."""
import pytest
import torch

from mmlocal.analysis import (measure_peak_costs, optimizer_state_ratio, peak_balanced_indices,
                              predicted_peak)
from mmlocal.local.split import resolve_boundaries
from mmlocal.testing import build_classifier, cifar_batch, step_peak
from mmlocal.utils.memory import PeakMemoryTracker


@pytest.mark.parametrize('optimizer, state', [
    (dict(type='SGD', lr=0.1), 0), (dict(type='SGD', lr=0.1, momentum=0.9), 1),
    (dict(type='Adam', lr=1e-3), 2), (dict(type='AdamW', lr=1e-3, amsgrad=True), 3)])
def test_optimizer_state_is_measured(optimizer, state):
    assert optimizer_state_ratio(optimizer) == state


@pytest.mark.parametrize('hilo', [None, dict(cascade=2)])
def test_measured_peaks_predict_the_real_step(hilo):
    """PeakCosts on a real CIFAR batch: the graph bytes are what the allocator
    holds after a training forward, the predicted step peak is the real
    step's within 15% (measured here: 26.0 / 26.0 MB, with HiLo k=2 36.0 /
    38.0 MB), and the peak-balanced split's real peak is not above the
    equal-blocks split's (42.5 and 55.2 MB)."""
    model = build_classifier(depth=20)
    batch = cifar_batch(32)
    data = model.data_preprocessor(batch, True)
    local = dict(method=dict(type='InfoPro'), hilo=hilo)
    state = {k: v.clone() for k, v in model.state_dict().items()}
    rng = torch.get_rng_state()
    costs = measure_peak_costs(model, data['inputs'], data['data_samples'], local)
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in state.items())  # BN restored
    assert torch.equal(rng, torch.get_rng_state())  # the heads' init drew nothing
    assert all(p.grad is None for p in model.parameters())
    assert costs.window == (2 if hilo else 1) and len(costs.head) == len(costs.paths) - 1
    with PeakMemoryTracker('cpu') as tracker:
        tracker.reset_peak()
        out = model.backbone(data['inputs'])
    held = tracker.stats.end_increase_bytes
    del out
    assert sum(costs.graph) == pytest.approx(held, rel=0.1)

    k = 4
    cuts = peak_balanced_indices(costs, k)
    best = [costs.paths[i] for i in cuts]
    blocks = resolve_boundaries(model, k, split='blocks')
    local = {k: v for k, v in local.items() if v is not None}
    sgd = dict(type='SGD', lr=0.1)
    real_best, _ = step_peak(model, batch, dict(boundaries=best, **local), sgd)
    real_blocks, _ = step_peak(model, batch, dict(boundaries=blocks, **local), sgd)
    ends = cuts + [len(costs.paths) - 1]
    assert predicted_peak(costs, ends) == pytest.approx(real_best, rel=0.15)
    assert real_best <= real_blocks * 1.02


def test_analysis_plan_is_the_runtime_plan():
    """The heads the peak analysis measures are those the learner trains:
    with a boundary at every candidate, ``candidate_plan`` equals the
    learner's plan for the same config, schedule included."""
    from mmlocal.analysis import candidate_plan
    from mmlocal.local import LocalConfig
    from mmlocal.local import build_learner
    from mmlocal.local.split import block_paths
    from mmlocal.testing import build_classifier
    model = build_classifier()
    paths = block_paths(model)
    cfg = LocalConfig.parse(dict(
        num_modules=len(paths), split='blocks', method=dict(type='InfoPro'),
        hilo=dict(cascade=2), pff=dict(mode='batched'), stem='merged', schedule='stage',
        mlaan=dict(table='rule')))
    learner = build_learner(model, cfg)
    try:
        plan = candidate_plan(cfg, paths, model.backbone.depth)
        assert learner.plan == plan
        assert plan.settings['schedule'] == 'stage'
        assert {h.pff_mode for h in plan.heads} == {'batched'} and any(h.leap for h in plan.heads)
    finally:
        learner.remove()
