"""The authors' own numbers for one training step, and mmlocal's step on them.

``../shared/reference/golden/*.pt`` and ``tests/data/golden/*.pt`` (their
READMEs say how they were made) pin a config to the gradients, losses and updates that the authors' public code
computes for one step from given weights and a given batch. ``golden_step``
runs the same step through the real Runner-built model and optim wrapper;
``grad_errors``, ``loss_errors`` and ``update_errors`` apply the fixtures'
tolerances and return what is out of them (empty: a match).
"""
import os
import os.path as osp
import tempfile
from dataclasses import dataclass
from typing import Dict, List, Tuple

import torch

#: the mmlocal checkout (configs are named relative to it)
REPO_ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
GOLDEN_DIR = os.environ.get('MMLOCAL_GOLDEN_DIR',
                            osp.join(REPO_ROOT, '..', 'shared', 'reference', 'golden'))
#: fixtures made for mmlocal and kept in the repository (their README says how)
REPO_GOLDEN_DIR = osp.join(REPO_ROOT, 'tests', 'data', 'golden')


@dataclass
class GoldenStep:
    """mmlocal's step on a fixture: gradients as the optimizer saw them,
    the logged losses and the parameters after the step."""
    lr: float
    grads: Dict[str, Dict[str, torch.Tensor]]  # 'grads_model' / 'grads_heads' -> name -> grad
    losses: Dict[str, float]
    params_after: Dict[str, Dict[str, torch.Tensor]]  # 'params_after_model' / '_heads'


def load_golden(name: str, directory: str = GOLDEN_DIR) -> dict:
    """A fixture by file name (``infopro_hpff.pt`` ...)."""
    return torch.load(osp.join(directory, name), weights_only=True)


def golden_step(fixture: dict, threads: int = 1,
                dtype: torch.dtype = torch.float32) -> GoldenStep:
    """One ``train_step`` of the fixture's config from its weights and batch,
    with the authors' learning rate (no warm-up applied).

    ``threads``: CPU threads of the step. The fixtures were written with one;
    with one, mmlocal reproduces them bit for bit. Another count changes the
    float summation order, which some heads amplify (measured on
    ``dgl_mlaan.pt``: two threads move the gradients of the independent
    heads of m5 and m15 by up to 1 % of their largest entry, beyond the
    fixture's tolerance, and the backbone's by 1.3e-5)."""
    saved = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        return _golden_step(fixture, dtype)
    finally:
        torch.set_num_threads(saved)


def _golden_step(fixture: dict, dtype: torch.dtype) -> GoldenStep:
    from mmengine.config import Config
    from mmengine.logging import MessageHub
    from mmengine.runner import Runner
    from mmpretrain.structures import DataSample

    cfg = Config.fromfile(osp.join(REPO_ROOT, fixture['config']))
    cfg.work_dir = tempfile.mkdtemp(prefix='mmlocal_golden_')
    cfg.log_level = 'WARNING'
    runner = Runner.from_cfg(cfg)
    model = runner.model
    wrapper = runner.build_optim_wrapper(cfg.optim_wrapper)
    heads = wrapper.learner
    model.load_state_dict(fixture['model_state'])
    heads.load_state_dict(fixture['heads_state'])
    if dtype != torch.float32:
        # the data preprocessor's mean and std buffers follow the model, so
        # the normalised batch comes out in ``dtype`` too
        model.to(dtype)
        heads.to(dtype)
    opt = wrapper.optimizer
    for group in opt.param_groups:
        group['lr'] = fixture['optim']['lr']
    seen: dict = {}
    modules = (('grads_model', model), ('grads_heads', heads))

    def capture(*args, _step=opt.step, **kwargs):
        seen['lr'] = opt.param_groups[0]['lr']
        seen['grads'] = {key: {n: torch.zeros_like(p) if p.grad is None else p.grad.clone()
                               for n, p in mod.named_parameters()} for key, mod in modules}
        return _step(*args, **kwargs)

    opt.step = capture  # the test's probe on its own optimizer instance
    model.train()
    data = dict(inputs=list(fixture['inputs']),
                data_samples=[DataSample().set_gt_label(int(y)) for y in fixture['labels']])
    log_vars = model.train_step(data, wrapper)
    hub = MessageHub.get_current_instance()
    losses = {}
    for key in fixture['losses']:
        if key == 'task':
            losses[key] = float(log_vars['loss'].detach())
        else:
            losses[key] = hub.get_scalar('train/' + key).current()
    after = {'params_after_model': dict(model.named_parameters()),
             'params_after_heads': dict(heads.named_parameters())}
    return GoldenStep(seen['lr'], seen['grads'], losses,
                      {k: {n: p.detach().clone() for n, p in v.items()} for k, v in after.items()})


def _group(name: str) -> Tuple[str, ...]:
    """One backbone stage or one local head: the first two name parts."""
    return tuple(name.split('.')[:2])


def _group_max(ref: Dict[str, torch.Tensor]) -> Dict[Tuple[str, ...], float]:
    top: Dict[Tuple[str, ...], float] = {}
    for n, r in ref.items():
        top[_group(n)] = max(top.get(_group(n), 0.), r.abs().max().item())
    return top


def grad_errors(got: Dict[str, torch.Tensor], ref: Dict[str, torch.Tensor],
                rtol: float = 1e-4, floor: float = 1e-6) -> List[str]:
    """``max|g - g_ref| <= rtol max|g_ref| + floor G`` per tensor, G the
    largest |g_ref| of its stage or head (the fixture README's rule)."""
    top = _group_max(ref)
    bad = []
    for n, r in ref.items():
        if n not in got:
            bad.append(f'{n}: no such parameter')
            continue
        err = (got[n] - r).abs().max().item()
        allowed = rtol * r.abs().max().item() + floor * top[_group(n)]
        if err > allowed:
            bad.append(f'{n}: max error {err:.3g} > {allowed:.3g}')
    return bad


def update_errors(after: Dict[str, torch.Tensor], before: Dict[str, torch.Tensor],
                  ref_after: Dict[str, torch.Tensor], rtol: float = 1e-4,
                  floor: float = 1e-6) -> List[str]:
    """Updates, not values: ``max|d - d_ref| <= rtol max|d_ref| + floor U +
    2^-21 max|p_before|`` with d = p_after - p_before, U the largest
    |d_ref| of the stage or head."""
    deltas = {n: r - before[n] for n, r in ref_after.items()}
    top = _group_max(deltas)
    bad = []
    for n, d_ref in deltas.items():
        d = after[n] - before[n]
        err = (d - d_ref).abs().max().item()
        allowed = (rtol * d_ref.abs().max().item() + floor * top[_group(n)]
                   + 2 ** -21 * before[n].abs().max().item())
        if err > allowed:
            bad.append(f'{n}: update error {err:.3g} > {allowed:.3g}')
    return bad


def loss_errors(got: Dict[str, float], ref: Dict[str, float], rtol: float = 1e-4) -> List[str]:
    return [f'{k}: {got[k]!r} vs {v!r}' for k, v in ref.items()
            if not abs(got[k] - v) <= rtol * abs(v)]
