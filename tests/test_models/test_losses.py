"""Unit tests of the local losses: values against their definitions."""
import math

import torch
import torch.nn.functional as F

from mmlocal.models.losses import cross_entropy, predsim_loss, similarity_matrix, supcon_loss


def test_soft_cross_entropy_equals_hard_for_one_hot():
    torch.manual_seed(0)
    logits = torch.randn(6, 5)
    labels = torch.tensor([0, 1, 2, 3, 4, 0])
    torch.testing.assert_close(cross_entropy(logits, F.one_hot(labels, 5).float()),
                               cross_entropy(logits, labels))
    torch.testing.assert_close(cross_entropy(logits, labels), F.cross_entropy(logits, labels))


def test_soft_cross_entropy_of_a_mixup_pair_is_the_mixture():
    torch.manual_seed(0)
    logits = torch.randn(4, 3)
    a, b = torch.tensor([0, 1, 2, 0]), torch.tensor([1, 2, 0, 2])
    soft = 0.7 * F.one_hot(a, 3).float() + 0.3 * F.one_hot(b, 3).float()
    torch.testing.assert_close(cross_entropy(logits, soft),
                               0.7 * F.cross_entropy(logits, a) + 0.3 * F.cross_entropy(logits, b))


def test_supcon_is_low_for_clustered_features_and_high_for_swapped():
    labels = torch.tensor([0, 0, 1, 1])
    clustered = torch.tensor([[1., 0.], [1., 0.01], [0., 1.], [0.01, 1.]])
    swapped = clustered[[0, 2, 1, 3]]
    assert supcon_loss(clustered, labels) < supcon_loss(swapped, labels)
    # one positive among three others: the perfect-cluster value is log(1 + 2 e^(-1/T))
    t = 0.07
    want = math.log(1 + 2 * math.exp(-1 / t))
    assert abs(supcon_loss(torch.tensor([[1., 0.], [1., 0.], [0., 1.], [0., 1.]]), labels).item()
               - want) < 1e-4


def test_supcon_anchor_without_positive_contributes_nothing():
    feats = torch.randn(3, 8)
    assert supcon_loss(feats, torch.tensor([0, 1, 2])).item() == 0.


def test_similarity_matrix_is_a_correlation():
    torch.manual_seed(0)
    x = torch.randn(5, 7)
    s = similarity_matrix(x)
    torch.testing.assert_close(torch.diagonal(s), torch.ones(5), atol=1e-5, rtol=0)
    torch.testing.assert_close(s, s.t())
    c = x - x.mean(1, keepdim=True)
    c = c / c.norm(dim=1, keepdim=True)
    torch.testing.assert_close(s, (c @ c.t()).clamp(-1, 1), atol=1e-5, rtol=0)


def test_predsim_loss_is_zero_sim_term_when_features_match_the_labels():
    labels = torch.tensor([0, 1, 0, 2])
    onehot = F.one_hot(labels, 3).float()
    losses = predsim_loss(torch.zeros(4, 3), onehot, labels, 3, beta=0.99)
    assert losses['loss_sim'].item() < 1e-10
    torch.testing.assert_close(losses['loss_pred'], torch.tensor(0.01 * math.log(3)))


def _supcon_by_anchor(feats, labels, t=0.07):
    """SupCon written anchor by anchor (Khosla et al., eq. 2) in float64: an
    anchor without a positive adds 0, the mean runs over all anchors (as
    InfoPro's ``networks/losses.py``: ``mask_sum`` 0 -> 1, ``.mean()``)."""
    z = [[float(v) for v in row] for row in F.normalize(feats.double(), dim=1)]
    n = len(z)
    total = 0.
    for i in range(n):
        sims = [sum(a * b for a, b in zip(z[i], z[j])) / t for j in range(n)]
        denom = math.log(sum(math.exp(sims[a]) for a in range(n) if a != i))
        pos = [p for p in range(n) if p != i and labels[p] == labels[i]]
        if pos:
            total += -sum(sims[p] - denom for p in pos) / len(pos)
    return total / n


def test_supcon_averages_over_every_anchor_with_classes_seen_once():
    """Classes 3, 4 and 5 appear once: their anchors add 0 but count in the
    mean (mmlocal averaged over the anchors with a positive: 9/6 = 1.5x)."""
    torch.manual_seed(0)
    feats = torch.randn(9, 16)
    labels = [0, 0, 1, 1, 2, 2, 3, 4, 5]
    got = supcon_loss(feats, torch.tensor(labels))
    want = _supcon_by_anchor(feats, labels)
    assert abs(got.item() - want) < 1e-5 * abs(want)
    with_pos = want * 9 / 6  # the mean over the six anchors that have a positive
    assert abs(got.item() - with_pos) > 0.1 * abs(want)
    # gradient: every anchor's term is there, the singletons' as negatives
    feats.requires_grad_()
    supcon_loss(feats, torch.tensor(labels)).backward()
    assert feats.grad[6:].abs().sum() > 0
