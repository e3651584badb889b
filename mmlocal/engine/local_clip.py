"""``clip_grad`` under local learning: each local module clipped by its own norm.

mmengine's ``clip_grad=dict(max_norm=...)`` scales every gradient by one
factor computed from the norm of all of them. Under local learning that
couples the modules without any autograd path: module 1's update shrinks
when the task head's gradient grows, and one NaN loss turns every module's
update NaN (seen on mmdet's FCOS config, ``clip_grad=dict(max_norm=35)``).

``clip_grad.scope`` chooses:

* ``'module'`` (default): each local module, its parameters together with its
  own local heads, is clipped by its own norm, so a module's update depends
  on its own losses only; what no local module's graph reaches (neck, task
  heads) is the last module's;
* ``'global'``: mmengine's clip over all gradients (the toolbox's behaviour,
  coupling the modules).

``type='value'`` clips element by element and couples nothing; it takes no
scope. The module of each model parameter is the one the first step's
isolation check found (``isolation.py``). The norms are computed in one pass
without a host sync; the logged ``grad_norm`` is the global norm before
clipping, as mmengine logs it.
"""
import math
from typing import Dict, List, Optional, Tuple

import torch

CLIP_SCOPES = ('module', 'global')
_NORM_KEYS = ('max_norm', 'norm_type', 'error_if_nonfinite', 'foreach')


def pop_clip_scope(clip_kwargs: Optional[dict], grad_name: str) -> str:
    """Take ``scope`` out of mmengine's clip arguments (in place) and check it."""
    if not clip_kwargs:
        return 'module'
    scope = clip_kwargs.pop('scope', None)
    if grad_name != 'grad_norm':  # mmengine: type=value
        if scope is not None:
            raise ValueError("optim_wrapper.clip_grad.scope applies to type='norm' only: "
                             "type='value' clips each element alone; drop scope")
        return 'global'
    scope = 'module' if scope is None else scope
    if scope not in CLIP_SCOPES:
        raise ValueError(f'optim_wrapper.clip_grad.scope must be one of {CLIP_SCOPES} '
                         f"('module': each local module by its own norm; 'global': mmengine's "
                         f'clip over all gradients), got {scope!r}')
    unknown = sorted(set(clip_kwargs) - set(_NORM_KEYS))
    if unknown:
        raise ValueError(f'optim_wrapper.clip_grad has no key {unknown[0]!r}: the keys are '
                         f"{list(_NORM_KEYS) + ['type', 'scope']}")
    if 'max_norm' not in clip_kwargs:
        raise ValueError('optim_wrapper.clip_grad needs max_norm, e.g. dict(max_norm=35)')
    return scope


class ModuleGradClip:
    """Clips the gradients of each local module by that module's norm.

    Args:
        max_norm, norm_type, error_if_nonfinite: as
            ``torch.nn.utils.clip_grad_norm_``, applied per module.
    """

    def __init__(self, max_norm: float, norm_type: float = 2.0,
                 error_if_nonfinite: bool = False, foreach: Optional[bool] = None) -> None:
        self.max_norm = float(max_norm)
        self.norm_type = float(norm_type)
        self.error_if_nonfinite = error_if_nonfinite
        self._key: Optional[Tuple[int, ...]] = None
        self._index: Optional[torch.Tensor] = None
        self._num_modules = 1

    @staticmethod
    def owners(learner) -> Dict[int, int]:
        """id(parameter) -> local module: the model's from the isolation
        check, each local head's from the module it reads."""
        owners = dict(learner.isolation.owners)
        for heads in (learner.heads, learner.cascade_heads):
            for name, head in heads.items():
                for p in head.parameters():
                    owners[id(p)] = int(name[1:]) - 1
        return owners

    def _groups(self, params: List[torch.Tensor], learner) -> torch.Tensor:
        """The module of each parameter as an index tensor (cached while the
        parameters with gradients stay the same)."""
        key = tuple(id(p) for p in params)
        if key != self._key:
            owners = self.owners(learner)
            last = learner.num_modules - 1
            self._num_modules = learner.num_modules
            self._index = torch.tensor([owners.get(id(p), last) for p in params],
                                       device=params[0].grad.device)
            self._key = key
        return self._index

    def __call__(self, params: List[torch.Tensor], learner) -> torch.Tensor:
        """Clip in place; returns the global norm before clipping."""
        params = [p for p in params if p.grad is not None]
        if not params:
            return torch.tensor(0.)
        index = self._groups(params, learner)
        grads = [p.grad for p in params]
        norms = torch.stack(torch._foreach_norm(grads, self.norm_type)).float()
        zeros = norms.new_zeros(self._num_modules)
        if math.isinf(self.norm_type):
            module_norm = zeros.scatter_reduce(0, index, norms, 'amax')
            total = module_norm.max()
        else:
            powered = zeros.index_add(0, index, norms.pow(self.norm_type))
            module_norm = powered.pow(1. / self.norm_type)
            total = powered.sum().pow(1. / self.norm_type)
        if self.error_if_nonfinite and not torch.isfinite(module_norm).all():
            raise RuntimeError(f'a local module has a non-finite gradient norm '
                               f'({module_norm.tolist()}); error_if_nonfinite=True')
        coef = (self.max_norm / (module_norm + 1e-6)).clamp(max=1.0)
        torch._foreach_mul_(grads, list(coef[index].to(grads[0].dtype).unbind()))
        return total
