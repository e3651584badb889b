"""The probe (``mmlocal/local/probe.py``): block shapes, token grids, and a
clear refusal of block lists the backbone's forward does not run in order."""
import pytest
import torch
import torch.nn as nn

from mmlocal.local.probe import hw_argument, probe_blocks


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
