"""Local losses: soft-label cross-entropy, SupCon (InfoPro contrast mode) and
PredSim's similarity matching."""
import torch
import torch.nn.functional as F

from mmlocal.utils.dist import gather_batch


def cross_entropy(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """CE against hard labels (B,) or soft labels (B, C) from Mixup/CutMix."""
    if labels.dim() == logits.dim():
        return -(labels * F.log_softmax(logits, dim=1)).sum(dim=1).mean()
    return F.cross_entropy(logits, labels)


def hard_labels(labels: torch.Tensor) -> torch.Tensor:
    return labels.argmax(dim=1) if labels.dim() == 2 else labels


def supcon_loss(features: torch.Tensor, labels: torch.Tensor,
                temperature: float = 0.07,
                base_temperature: float = 0.07) -> torch.Tensor:
    """Supervised contrastive loss (Khosla et al.) with one view per sample,
    ``contrast_mode='all'``: positives share the label, self excluded.

    Averaged over every anchor, as InfoPro's ``networks/losses.py``
    (``SupConLoss``, lines 89-97 @ a38362a): an anchor without a positive in
    the (global) batch adds 0 and still counts in the mean."""
    labels = gather_batch(hard_labels(labels))  # the global batch across ranks
    z = gather_batch(F.normalize(features.flatten(1), dim=1))
    logits = z @ z.t() / temperature
    logits = logits - logits.max(dim=1, keepdim=True)[0].detach()
    n = z.shape[0]
    not_self = ~torch.eye(n, dtype=torch.bool, device=z.device)
    pos = (labels[:, None] == labels[None, :]) & not_self
    exp = torch.exp(logits) * not_self
    log_prob = logits - torch.log(exp.sum(dim=1, keepdim=True))
    num_pos = pos.sum(dim=1)
    mean_log_prob_pos = (log_prob * pos).sum(dim=1) / num_pos.clamp(min=1)
    loss = -(temperature / base_temperature) * mean_log_prob_pos
    return loss.mean()


def similarity_matrix(x: torch.Tensor) -> torch.Tensor:
    """PredSim's S(x): centred, L2-normalised rows, X X^T clamped to [-1, 1]."""
    if x.dim() == 4 and x.shape[1] > 3 and x.shape[2] > 1:
        x = x.flatten(2).std(dim=2)
    x = x.flatten(1)
    x = x - x.mean(dim=1, keepdim=True)
    x = x / (x.norm(dim=1, keepdim=True) + 1e-8)
    x = gather_batch(x)  # rows of every rank: S over the global batch
    return (x @ x.t()).clamp(-1, 1)


def predsim_loss(logits: torch.Tensor, sim_feature: torch.Tensor,
                 labels: torch.Tensor, num_classes: int,
                 beta: float = 0.99) -> dict:
    """(1 - beta) * CE + beta * MSE(S(h), S(onehot(y)))."""
    if labels.dim() == 2:
        target = labels
    else:  # F.one_hot checks the labels' range on the host: a sync per head
        target = logits.new_zeros(labels.shape[0], num_classes).scatter_(1, labels[:, None], 1.)
    loss_sim = F.mse_loss(similarity_matrix(sim_feature), similarity_matrix(target))
    return dict(loss_pred=(1 - beta) * cross_entropy(logits, labels),
                loss_sim=beta * loss_sim)
