"""The shape probe (``mmlocal/local/probe.py``): one no-grad forward that tells
every block's output shape, activation cost, token grid and ``FeatureInfo``,
and a clear refusal of block lists the forward does not run in order."""
import pytest
import torch
import torch.nn as nn

from mmlocal.local.probe import default_probe_size, hw_argument, probe_blocks
from mmlocal.local.split import block_paths
from mmlocal.structures import FeatureInfo
from mmlocal.testing import build_classifier



def test_resnet_shapes_costs_and_features():
    """He et al.'s CIFAR ResNet-20: 16, 32, 64 channels at 32, 16, 8 pixels;
    costs are the output elements of every leaf module of a block (a batch
    of two), recounted here with hooks of our own."""
    model = build_classifier(depth=20)
    paths = block_paths(model)
    probe = probe_blocks(model, 'backbone', paths, (32, 32))
    assert probe.size == (32, 32) and probe.grid is None
    assert probe.feature('backbone.stem') == FeatureInfo(16, (32, 32), 1)
    assert probe.feature('backbone.layer1.2') == FeatureInfo(16, (32, 32), 1)
    assert probe.feature('backbone.layer2.0') == FeatureInfo(32, (16, 16), 2)
    assert probe.feature('backbone.layer3.2') == FeatureInfo(64, (8, 8), 4)

    counted = {p: 0 for p in paths}
    handles = []
    for p in paths:
        for m in model.get_submodule(p).modules():
            if not list(m.children()):
                handles.append(m.register_forward_hook(
                    lambda mod, args, out, p=p: counted.__setitem__(p, counted[p] + out.numel())))
    with torch.no_grad():
        model.backbone.eval()
        model.backbone(torch.zeros(2, 3, 32, 32))
    for h in handles:
        h.remove()
    assert probe.costs == pytest.approx(counted)
    assert probe.costs['backbone.layer1.0'] == 4 * probe.costs['backbone.layer3.1']


def test_probe_leaves_the_model_as_it_was():
    model = build_classifier(depth=20).train()
    state = {k: v.clone() for k, v in model.state_dict().items()}
    probe_blocks(model, 'backbone', block_paths(model), (40, 24))
    assert model.training and model.backbone.training
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in state.items())
    assert all(p.grad is None for p in model.parameters())
    assert not model.backbone._forward_hooks and not model.backbone._forward_pre_hooks


def test_vit_tokens_become_their_patch_grid():
    from mmengine.registry import init_default_scope
    from mmpretrain.registry import MODELS
    init_default_scope('mmpretrain')
    holder = nn.Module()
    holder.backbone = MODELS.build(dict(type='VisionTransformer', arch='deit-tiny',
                                        img_size=32, patch_size=8))
    paths = block_paths(holder)
    probe = probe_blocks(holder, 'backbone', paths, default_probe_size(holder.backbone))
    assert probe.size == (32, 32) and probe.grid == (4, 4) and probe.extra_tokens == 1
    assert probe.shapes['backbone.layers.0'] == (2, 17, 192)  # class token + 4 x 4 patches
    assert probe.feature('backbone.layers.5') == FeatureInfo(192, (4, 4), 8, tokens=True)


def test_default_probe_sizes():
    from mmlocal.models.backbones import CifarResNet
    assert default_probe_size(CifarResNet(depth=20)) == (32, 32)
    vit = nn.Module()
    vit.img_size = (48, 64)
    assert default_probe_size(vit) == (48, 64)
    assert default_probe_size(nn.Conv2d(3, 3, 1)) == (64, 64)


def test_a_boundary_without_a_map_or_tokens_is_refused():
    model = build_classifier(depth=20)
    probe = probe_blocks(model, 'backbone', block_paths(model), (32, 32))
    probe.shapes['backbone.layer3.2'] = torch.Size([2, 64])
    with pytest.raises(ValueError, match='choose a boundary that returns a map or tokens'):
        probe.feature('backbone.layer3.2')




class TokenBlock(nn.Module):
    """A token block called as ``block(x, hw_shape)`` (Swin, MiT)."""

    def __init__(self, c):
        super().__init__()
        self.fc = nn.Linear(c, c)

    def forward(self, x, hw_shape):
        return self.fc(x)


class Staged(nn.Module):
    """MiT-like: stages are ModuleLists (embedding, blocks, norm) the forward
    unpacks; ``swap``: the blocks of stage 0 run in reverse order."""

    def __init__(self, swap=False):
        super().__init__()
        self.swap = swap
        self.layers = nn.ModuleList(
            nn.ModuleList([nn.Conv2d(3 if i == 0 else 8, 8, 2, 2),
                           nn.ModuleList([TokenBlock(8), TokenBlock(8)]), nn.LayerNorm(8)])
            for i in range(2))

    def forward(self, x):
        for i, (embed, blocks, norm) in enumerate(self.layers):
            x = embed(x)
            h, w = x.shape[-2:]
            x = x.flatten(2).transpose(1, 2)
            order = list(blocks)[::-1] if self.swap and i == 0 else list(blocks)
            for block in order:
                x = block(x, (h, w))
            x = norm(x).transpose(1, 2).reshape(x.shape[0], 8, h, w)
        return (x, )


def holder(backbone):
    m = nn.Module()
    m.backbone = backbone
    return m


def test_token_blocks_record_their_own_grid():
    model = holder(Staged())
    paths = [f'backbone.layers.{i}.1.{j}' for i in range(2) for j in range(2)]
    probe = probe_blocks(model, 'backbone', paths, (32, 32))
    assert probe.grids == {paths[0]: (16, 16), paths[1]: (16, 16), paths[2]: (8, 8),
                           paths[3]: (8, 8)}
    feat = probe.feature(paths[2])
    assert (feat.channels, feat.spatial, feat.stride, feat.tokens) == (8, (8, 8), 4, True)
    assert hw_argument((torch.zeros(1), (3, 4)), {}) == (3, 4)
    assert hw_argument((torch.zeros(1), ), dict(hw_shape=torch.Size([5, 6]))) == (5, 6)
    assert hw_argument((torch.zeros(1), 3), {}) is None


def test_containers_the_forward_never_calls_are_refused_with_what_it_calls():
    model = holder(Staged())
    with pytest.raises(ValueError, match=r"Staged\.forward never calls 2 of the 2 listed blocks "
                       r"\(backbone\.layers\.0 is a ModuleList whose modules the forward calls "
                       r"directly: backbone\.layers\.0\.0, backbone\.layers\.0\.1\.0, "
                       r"backbone\.layers\.0\.1\.1, backbone\.layers\.0\.2"):
        probe_blocks(model, 'backbone', ['backbone.layers.0', 'backbone.layers.1'], (32, 32))


def test_blocks_out_of_order_are_refused():
    model = holder(Staged(swap=True))
    paths = [f'backbone.layers.{i}.1.{j}' for i in range(2) for j in range(2)]
    with pytest.raises(ValueError, match=r'calls the listed blocks in the order '
                       r"\['backbone\.layers\.0\.1\.1', 'backbone\.layers\.0\.1\.0'"):
        probe_blocks(model, 'backbone', paths, (32, 32))


def test_a_block_returning_no_single_tensor_is_refused():
    class Pair(nn.Module):
        def forward(self, x):
            return x, x

    class TwoOut(nn.Module):
        def __init__(self):
            super().__init__()
            self.a, self.b = Pair(), nn.Identity()

        def forward(self, x):
            return (self.b(self.a(x)[0]), )

    with pytest.raises(ValueError, match=r'every block must return one tensor to be cut after, '
                       r'but backbone\.a returns a tuple'):
        probe_blocks(holder(TwoOut()), 'backbone', ['backbone.a', 'backbone.b'], (8, 8))
