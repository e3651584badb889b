"""Isolation checked by construction (``mmlocal/local/isolation.py``).

A hand-made mmpretrain classifier whose backbone has four conv blocks; with a
skip connection around the boundary, the first step is refused with an error
naming the parameter, the tensor that crossed, its consumer and the boundary.
The same backbone without the skip (and with its early stage output rebuilt
by the backbone, which the hooks detach) trains. The check costs the first
step only.
"""
import pytest
import torch
import torch.nn as nn

from mmlocal.local import LocalLearner
from mmlocal.local.isolation import IsolationError
from mmlocal.testing import build_local, cifar_batch, local_step_grads

WIDTH = 8


class SkipNet(nn.Module):
    """Four conv blocks in ``layers`` (the generic block list);
    ``skip``: block 2 reads block 0's output added to block 1's (around a
    boundary after block 1); ``shared``: block 3 reuses block 0's conv; ``outputs``: the
    backbone also returns a stage output made from block 0's output."""

    def __init__(self, skip: bool = False, shared: bool = False, outputs: bool = False):
        super().__init__()
        self.skip, self.shared, self.outputs = skip, shared, outputs
        self.stem = nn.Conv2d(3, WIDTH, 3, padding=1)
        self.layers = nn.ModuleList(
            nn.Sequential(nn.Conv2d(WIDTH, WIDTH, 3, padding=1), nn.BatchNorm2d(WIDTH), nn.ReLU())
            for _ in range(4))
        self.norm0 = nn.BatchNorm2d(WIDTH)

    def forward(self, x):
        x0 = self.layers[0](self.stem(x))
        out0 = self.norm0(x0).permute(0, 1, 3, 2).contiguous()
        x1 = self.layers[1](x0)
        x2 = self.layers[2](x1 + x0 if self.skip else x1)
        x3 = self.layers[3](x2)
        if self.shared:
            x3 = x3 + self.layers[0][0](x3)
        if self.outputs:  # an early stage output the backbone rebuilt (as Swin's norm + permute)
            return (out0, x3)
        return (x3, )


def build(**kwargs) -> nn.Module:
    from mmengine.registry import init_default_scope
    from mmpretrain.models import ImageClassifier
    init_default_scope('mmpretrain')
    torch.manual_seed(0)
    model = ImageClassifier(
        backbone=dict(type='ResNet_CIFAR', depth=18),  # replaced below
        neck=dict(type='GlobalAveragePooling'),
        head=dict(type='LinearClsHead', num_classes=10, in_channels=WIDTH),
        data_preprocessor=dict(type='ClsDataPreprocessor', num_classes=10,
                               mean=[125.3, 123.0, 113.9], std=[63.0, 62.1, 66.7]))
    model.backbone = SkipNet(**kwargs)
    return model


def step(model, local):
    wrapper = build_local(model, dict(local, probe_size=(32, 32)))
    data = model.data_preprocessor(cifar_batch(4), True)
    return local_step_grads(model, wrapper, data)


def test_skip_connection_around_a_boundary_is_refused_naming_the_tensor():
    model = build(skip=True)
    with pytest.raises(IsolationError) as err:
        step(model, dict(num_modules=2))  # boundary: backbone.layers.1
    msg = str(err.value)
    assert 'local module m1 is not isolated: the task loss reaches backbone.layers.0.' in msg
    assert 'a tensor computed in backbone.layers.0' in msg  # the tensor that crossed
    assert 'which backbone uses' in msg  # its consumer: the backbone's own forward
    assert 'boundary backbone.layers.1' in msg


def test_a_local_loss_that_reaches_an_earlier_module_is_refused():
    """K=3 (boundaries after blocks 1 and 2): module 2's own output already
    depends on module 1 through the skip."""
    model = build(skip=True)
    with pytest.raises(IsolationError, match=r'the local loss of m2 reaches backbone\.layers\.0\.'
                       r'\d\.(weight|bias) of m1 .* boundary backbone\.layers\.1'):
        step(model, dict(boundaries=['backbone.layers.1', 'backbone.layers.2']))


def test_a_parameter_shared_by_two_modules_is_refused():
    model = build(shared=True)
    with pytest.raises(IsolationError, match=r'the task loss reaches backbone\.layers\.0\.0\.'
                       r'(weight|bias) of m1 through the parameter itself, which '
                       r'backbone\.layers\.0\.0 uses'):
        step(model, dict(num_modules=2))


def test_windows_are_allowed_routes():
    """HiLo: the cascade loss of m2 trains m1 through the router, not the graph."""
    model = build(skip=False)
    got = step(model, dict(num_modules=3, hilo=dict(cascade=2)))
    assert got['backbone.layers.0.0.weight'].abs().sum() > 0


def test_a_rebuilt_early_stage_output_leaves_detached_and_first_step_only():
    model = build(outputs=True)
    hooks = lambda: sum(len(m._forward_hooks) + len(m._forward_pre_hooks)  # noqa: E731
                        for m in model.modules())
    wrapper = build_local(model, dict(num_modules=2, probe_size=(32, 32)))
    learner = LocalLearner.of(model)
    installed = hooks()
    data = model.data_preprocessor(cifar_batch(4), True)
    local_step_grads(model, wrapper, data)  # the check passes: norm0's output was detached
    assert learner.isolation.done and hooks() == installed
    # every model parameter has its module: blocks by the split, the stem by
    # module 1's graph, the neck and task head by the task loss's
    owners = {n: learner.isolation.owners.get(id(p)) for n, p in model.named_parameters()}
    assert owners['backbone.stem.weight'] == 0 and owners['backbone.layers.1.0.weight'] == 0
    assert owners['backbone.layers.2.0.weight'] == 1 and owners['head.fc.weight'] == 1
    assert owners['backbone.norm0.weight'] is None  # detached: no graph reaches it

    seen = []
    original = learner.isolation._check
    learner.isolation._check = lambda *a, **k: seen.append(a) or original(*a, **k)
    local_step_grads(model, wrapper, data)
    assert seen == []  # later steps are not checked
