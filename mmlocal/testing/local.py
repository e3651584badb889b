"""Independent re-computations of local losses and gradients: the ground
truth that tests compare the learner with."""
from typing import Dict, List, Optional

import torch
from mmengine.optim import build_optim_wrapper

from mmlocal.local.split import block_paths
from mmlocal.utils.mmengine_adapter import run_forward


class _Stop(Exception):
    pass


def build_local(model, local: dict, lr: float = 0.1, optimizer: Optional[dict] = None,
                **kwargs):
    """The local-learning optim wrapper of ``model`` (``optimizer``, default
    SGD with momentum 0.9)."""
    cfg = dict(type='LocalLearningOptimWrapper',
               constructor='LocalLearningOptimWrapperConstructor',
               optimizer=optimizer or dict(type='SGD', lr=lr, momentum=0.9), local=local,
               **kwargs)
    return build_optim_wrapper(model, cfg)


def module_param_names(model, boundaries: List[str], j: int) -> List[str]:
    """Names of the parameters of local module j (the last one: the rest of
    the model, heads of the task included, local heads excluded)."""
    paths = block_paths(model)
    cuts = [paths.index(b) for b in boundaries]
    lo = cuts[j - 1] + 1 if j > 0 else 0
    if j < len(cuts):
        blocks = paths[lo:cuts[j] + 1]
        names = []
        for n, _ in model.named_parameters():
            if any(n.startswith(b + '.') for b in blocks):
                names.append(n)
        if j == 0:  # anything of the backbone before the first block (stem convs)
            owned = {n for n, _ in model.named_parameters()
                     if any(n.startswith(p + '.') for p in paths)}
            names += [n for n, _ in model.named_parameters()
                      if n.startswith('backbone.') and n not in owned]
        return names
    earlier = set()
    for i in range(j):
        earlier |= set(module_param_names(model, boundaries, i))
    return [n for n, _ in model.named_parameters()
            if n not in earlier and not n.startswith('local_learner.')]


def features(model, inputs, cut_in: Optional[str], cut_out: Optional[str]):
    """Backbone output at ``cut_out`` with the graph cut at ``cut_in``."""
    handles, got = [], {}
    if cut_in is not None:
        handles.append(model.get_submodule(cut_in).register_forward_hook(
            lambda m, a, o: o.detach()))
    if cut_out is not None:
        def grab(m, a, o):
            got['h'] = o
            raise _Stop
        handles.append(model.get_submodule(cut_out).register_forward_hook(grab))
    try:
        model.backbone(inputs)
    except _Stop:
        pass
    finally:
        for h in handles:
            h.remove()
    return got['h']


def head_loss(head, h, targets):
    """A local head's total loss on feature ``h``."""
    losses = head.loss(head(h, tuple(targets.inputs.shape[-2:])), targets)
    return sum(losses.values())


def task_loss(model, inputs, samples, cut_in: Optional[str]):
    """The model's own loss with the graph cut at ``cut_in``."""
    handles = []
    if cut_in is not None:
        handles.append(model.get_submodule(cut_in).register_forward_hook(
            lambda m, a, o: o.detach()))
    try:
        losses = model.loss(inputs, samples)
    finally:
        for h in handles:
            h.remove()
    return model.parse_losses(losses)[0]


def grads_of(loss, model, names) -> Dict[str, torch.Tensor]:
    """d loss / d parameter for the named parameters (zeros where unused)."""
    params = dict(model.named_parameters())
    gs = torch.autograd.grad(loss, [params[n] for n in names], allow_unused=True)
    return {n: (torch.zeros_like(params[n]) if g is None else g) for n, g in zip(names, gs)}


def local_step_grads(model, wrapper, data) -> Dict[str, torch.Tensor]:
    """One armed forward + all backward passes (no optimizer step)."""
    wrapper.zero_grad()
    with wrapper.optim_context(model):
        losses = run_forward(model, data, mode='loss')
    loss, _ = model.parse_losses(losses)
    wrapper.backward(loss)
    wrapper.finish_local_step()
    return {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}


def assert_grad_close(got: torch.Tensor, want: torch.Tensor, msg: str = '') -> None:
    """Equal up to fp32 noise relative to the gradient's scale: a routing
    mistake (a missing or extra loss term) is orders of magnitude larger."""
    scale = want.abs().max().item()
    torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-5 * scale + 1e-12, msg=msg)
