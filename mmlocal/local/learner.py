"""The local-learning engine: hooks that cut a model into K local modules.

``LocalLearner`` is attached to the task model as ``model.local_learner`` (so
its heads are in the checkpoint and the optimizer) and installs PyTorch hooks:

* a pre-hook on the model captures the targets of a ``mode='loss'`` forward
  (after the data preprocessor);
* a forward hook on each boundary block evaluates the local losses, has them
  backpropagated at once (the module's graph is freed as soon as no cascade
  window needs it) and returns the output detached;
* tag hooks plus a hook on the backbone detach stage outputs that leave an
  earlier module (towards a neck or an E2E auxiliary head).

Hooks act only while armed (``LocalLearningOptimWrapper.optim_context``, i.e.
inside ``train_step``); disarmed they are pass-throughs, so val/test/predict
run the untouched model.

Gradient routing (HiLo, window size k): module j's output h_j gets an
independent head (weight w_ind) and, for j >= k-1, a cascade head (weight
w_cas) whose loss must reach modules j-k+1..j and stop at the window's input.
Heads run on detached leaves, giving the gradients g_ind, g_cas at h_j. The
cascade gradient is carried down the window through each module's retained
graph (one VJP per module, read at the module's input leaf); gradients that
stop at a module (its independent loss and the window starting there) are
summed and applied in one final VJP that also frees the module's graph. The
task loss closes the last window. Every module runs one forward; results
equal the authors' recomputation (x/y paths) numerically.
"""
import contextlib
import math
from typing import Dict, List, Optional, Sequence, Tuple

import torch
import torch.nn as nn
from mmengine.config import ConfigDict
from mmengine.dist import broadcast, get_world_size, is_distributed
from mmengine.logging import print_log

from .head_runner import check_patch_grid, run_head, run_head_patched
from .methods import FeatureInfo, TaskInfo
from .plan import build_head, plan_for
from mmlocal.models.heads.leap_head import LeapAugmentedHead
from .split import block_paths, resolve_boundaries
from .targets import build_target_adapter

_TAG = '_mmlocal_module'
# dummy-input size of the shape probe for backbones with a known input size
_PROBE_SIZES = {'CifarResNet': (32, 32), 'ResNet_CIFAR': (32, 32)}


def _as_map(x: torch.Tensor, grid: Optional[Tuple[int, int]], extra: int) -> torch.Tensor:
    """(B, C, H, W) view of a boundary output; tokens (B, N, C) are reshaped
    to their patch grid (class/distillation tokens dropped)."""
    if x.dim() == 4:
        return x
    if x.dim() == 3 and grid is not None:
        b, _, c = x.shape
        return x[:, extra:, :].transpose(1, 2).reshape(b, c, grid[0], grid[1])
    raise ValueError(f'mmlocal cannot give a local head a feature of shape {tuple(x.shape)}')


class LocalLearner(nn.Module):
    """Auxiliary heads and hooks turning ``model`` into K local modules.

    Args:
        model: the task model (mmseg/mmpretrain/mmdet ``BaseModel``, unwrapped).
        num_modules: K (1 = end-to-end).
        boundaries: explicit boundary block paths instead of ``num_modules``.
        split: 'auto' | 'blocks' | 'memory' | a preset name (see ``split.py``).
        method: the local method config, e.g. ``dict(type='InfoPro')``.
        hilo: HPFF hierarchical supervision, e.g. ``dict(cascade=2)``; keys
            in ``plan.build_plan`` (cascade k, independent/cascade weights,
            ``independent``, ``first_independent``, ``independent_method``,
            ``task_cascade_weight``).
        pff: patch feature fusion, e.g. ``dict(patches=2)``; ``variant``
            'paper' | 'quadrant' | 'output', ``apply_to``.
        mlaan: leap-augmented modules, e.g. ``dict(momentum=0.995)``; keys:
            ``momentum`` (EMA keep fraction r), ``ema`` ('all' modules or the
            'last' only, as the authors' CIFAR code), ``path`` ('cascade' as
            the code, or 'independent' as the paper's figure), ``table``
            ('auto': the authors' tables where they exist, else the rule).
        stem: 'module' (InfoPro's code: the stem is a local module with its
            own heads) or 'merged' (HPFF/MLAAN code: no head on the stem, the
            first segment's losses reach it). See ``plan.py``.
        task: target adapter name; default from the model class.
        backbone: path of the backbone in the model.
        probe_size: (H, W) of the dummy input used to infer feature shapes.
        num_classes: override the number of classes read from the model.
        check_finite: stop with an error naming the module on a NaN/inf loss.
    """

    def __init__(self, model: nn.Module, num_modules: Optional[int] = None,
                 boundaries: Optional[Sequence[str]] = None, split: str = 'auto',
                 method: dict = dict(type='DGL'), hilo: Optional[dict] = None,
                 pff: Optional[dict] = None, mlaan: Optional[dict] = None,
                 stem: str = 'module', task: Optional[str] = None,
                 backbone: str = 'backbone',
                 probe_size: Optional[Tuple[int, int]] = None,
                 num_classes: Optional[int] = None, check_finite: bool = True) -> None:
        super().__init__()
        self._model = [model]  # a list: not a submodule (no cycle)
        self.backbone_path = backbone
        self.check_finite = check_finite
        self.adapter = build_target_adapter(model, task)
        classes = num_classes or self.adapter.num_classes(model)
        self.adapter.classes = classes
        self.task = TaskInfo(self.adapter.task, classes)

        try:
            model.get_submodule(backbone)
        except AttributeError:
            raise ValueError(f'{type(model).__name__} has no submodule {backbone!r}: '
                             'set local.backbone to the path of its backbone') from None
        self.probe_size = tuple(probe_size or self._default_probe_size())
        shapes, costs = self._probe()
        self.boundaries = resolve_boundaries(
            model, num_modules, boundaries, split, backbone,
            block_costs=lambda paths: [costs[p] for p in paths])
        self.num_modules = len(self.boundaries) + 1
        self.features = [self._feature_info(shapes[b]) for b in self.boundaries]

        hilo = ConfigDict(hilo or {})
        mlaan = ConfigDict(mlaan or {})
        self.plan = plan_for(self.boundaries, block_paths(model, backbone),
                             getattr(model.get_submodule(backbone), 'depth', None),
                             method, hilo=hilo, pff=pff, mlaan=mlaan, stem=stem)
        self.plan.check_supervised()
        print_log(self.plan.format(), logger='current')
        # summary attributes (read by tools and tests)
        self.hilo = bool(hilo)
        self.window = self.plan.reach_back() + 1
        self.w_ind = float(hilo.get('independent_weight', 0.001)) if self.hilo else 1.
        self.w_cas = float(hilo.get('cascade_weight', 0.999)) if self.hilo else 0.
        self.patches = max([h.patches for h in self.plan.heads], default=1)
        self.ema_mode = mlaan.get('ema', 'all') if mlaan else None
        self._last_user = self.plan.last_user()

        self.heads = nn.ModuleDict()
        self.cascade_heads = nn.ModuleDict()
        for hp in self.plan.heads:
            j = hp.module
            feat = self.features[j]
            if hp.patches > 1 and hp.pff == 'paper':
                check_patch_grid(hp.patches, feat.spatial, self.boundaries[j])
            leap_feat = self._feature_info(shapes[hp.leap[-1]]) if hp.leap else None
            head = build_head(hp, feat, self.task, model, leap_feat)
            if hp.kind == 'independent':
                self.heads[f'm{j + 1}'] = head
            else:
                self.cascade_heads[f'm{j + 1}'] = head

        self._armed = False
        self._handles: List = []
        self._backward = None  # set by the optim wrapper
        # callback(m): module m's gradients are final (the optim wrapper
        # launches their all-reduce while the forward goes on)
        self.on_module_done = None
        self._reset()
        self.to(self._device())
        if is_distributed() and get_world_size() > 1:
            uses_sync_bn = any(isinstance(m, nn.SyncBatchNorm) for m in model.modules())
            # the heads follow the model's choice; torch SyncBN needs CUDA
            if uses_sync_bn and self._device().type == 'cuda':
                for name, child in list(self.named_children()):
                    setattr(self, name, nn.SyncBatchNorm.convert_sync_batchnorm(child))
            for t in list(self.parameters()) + list(self.buffers()):
                broadcast(t.data, src=0)  # heads are built after DDP wrapping
        model.add_module('local_learner', self)
        self._install_hooks()

    # ----------------------------------------------------------- construction
    @property
    def model(self) -> nn.Module:
        return self._model[0]

    def _device(self) -> torch.device:
        p = next(self.model.parameters(), None)
        return p.device if p is not None else torch.device('cpu')

    def _default_probe_size(self) -> Tuple[int, int]:
        backbone = self.model.get_submodule(self.backbone_path)
        size = getattr(backbone, 'img_size', None)
        if size is not None:
            return (size, size) if isinstance(size, int) else tuple(size)
        return _PROBE_SIZES.get(type(backbone).__name__, (64, 64))

    @torch.no_grad()
    def _probe(self) -> Tuple[Dict[str, torch.Size], Dict[str, float]]:
        """Run the backbone once on a dummy input: output shape of every block
        and its activation cost (elements of all its leaf-module outputs)."""
        model = self.model
        paths = block_paths(model, self.backbone_path)
        backbone = model.get_submodule(self.backbone_path)
        shapes: Dict[str, torch.Size] = {}
        costs = {p: 0. for p in paths}
        current = [None]
        handles = []

        def enter(path):
            def hook(mod, args):
                current[0] = path
            return hook

        def leave(path):
            def hook(mod, args, out):
                if isinstance(out, torch.Tensor):
                    shapes[path] = out.shape
            return hook

        def leaf(mod, args, out):
            # layers before the first listed block (a deep stem before the
            # max-pool) belong to the first module: count them there
            if isinstance(out, torch.Tensor):
                costs[current[0] or paths[0]] += out.numel()

        for p in paths:
            m = model.get_submodule(p)
            handles += [m.register_forward_pre_hook(enter(p)), m.register_forward_hook(leave(p))]
        for m in backbone.modules():
            if len(list(m.children())) == 0:
                handles.append(m.register_forward_hook(leaf))
        training = backbone.training
        backbone.eval()
        try:
            x = torch.zeros(2, 3, *self.probe_size, device=self._device())
            backbone(x)
        finally:
            backbone.train(training)
            for h in handles:
                h.remove()
        self._probe_grid = getattr(backbone, 'patch_resolution', None)
        self._extra_tokens = int(getattr(backbone, 'num_extra_tokens', 0))
        missing = [p for p in paths if p not in shapes]
        if missing:
            raise ValueError(f'blocks {missing[:3]} returned no tensor during the probe; '
                             'give explicit local.boundaries')
        return shapes, costs

    def _feature_info(self, shape: torch.Size) -> FeatureInfo:
        if len(shape) == 4:
            return FeatureInfo(shape[1], (shape[2], shape[3]),
                               max(self.probe_size[0] // shape[2], 1))
        if len(shape) == 3 and self._probe_grid is not None:
            grid = tuple(self._probe_grid)
            return FeatureInfo(shape[2], grid, max(self.probe_size[0] // grid[0], 1), True)
        raise ValueError(f'unsupported boundary output shape {tuple(shape)}')

    def _install_hooks(self) -> None:
        model = self.model
        backbone = model.get_submodule(self.backbone_path)
        self._handles.append(model.register_forward_pre_hook(self._capture, with_kwargs=True))
        self._handles.append(model.register_forward_hook(self._check_complete))
        for j, path in enumerate(self.boundaries):
            self._handles.append(
                model.get_submodule(path).register_forward_hook(self._boundary_hook(j)))
        # tag stage/block outputs with the module that produced them
        tagged = {id(m): m for _, m in backbone.named_children()}
        for p in block_paths(model, self.backbone_path):
            m = model.get_submodule(p)
            tagged[id(m)] = m
        for m in tagged.values():
            self._handles.append(m.register_forward_hook(self._tag))
        self._handles.append(backbone.register_forward_hook(self._detach_stale))
        patch_embed = getattr(backbone, 'patch_embed', None)
        if isinstance(patch_embed, nn.Module):
            self._handles.append(patch_embed.register_forward_hook(self._record_grid))

    def remove(self) -> None:
        """Uninstall the hooks (the heads stay in the model)."""
        for h in self._handles:
            h.remove()
        self._handles = []

    # -------------------------------------------------------------- arming
    def bind_backward(self, backward) -> None:
        """``backward(loss)``: the optim wrapper's scaled, uncounted backward."""
        self._backward = backward

    def leap_heads(self) -> List[nn.Module]:
        """MLAAN leap-augmented heads, in module order."""
        return [h for h in self.modules() if isinstance(h, LeapAugmentedHead)]

    def _sync_leaps(self) -> None:
        for h in self.leap_heads():
            if not bool(h.synced):
                h.sync_from([self.model.get_submodule(p) for p in h.sources])

    def update_ema(self) -> None:
        """MLAAN: EMA copies follow their live blocks, once per iteration
        (before the optimizer step, as the authors' code)."""
        for hp in self.plan.heads:
            if hp.ema:
                heads = self.heads if hp.kind == 'independent' else self.cascade_heads
                h = heads[f'm{hp.module + 1}']
                h.update_ema(self.model.get_submodule(h.sources[0]))

    @contextlib.contextmanager
    def armed(self):
        self._sync_leaps()
        self._reset()
        self._armed = True
        try:
            yield
        finally:
            self._armed = False

    def _reset(self) -> None:
        self._cur = 0
        self._targets = None
        self._out: Dict[int, torch.Tensor] = {}
        self._inp: Dict[int, torch.Tensor] = {}
        self._stop: Dict[int, torch.Tensor] = {}
        self._token_grid: Optional[Tuple[int, int]] = None
        self.log_vars: Dict[str, torch.Tensor] = {}

    # --------------------------------------------------------------- hooks
    def _capture(self, module, args, kwargs):
        if not self._armed:
            return None
        mode = kwargs.get('mode', args[2] if len(args) > 2 else 'tensor')
        if mode != 'loss':
            return None
        inputs = kwargs.get('inputs', args[0] if args else None)
        samples = kwargs.get('data_samples', args[1] if len(args) > 1 else None)
        self._reset()
        self._targets = self.adapter(inputs, samples, getattr(module, 'data_preprocessor', None))
        return None

    def _check_complete(self, module, args, output):
        if self._armed and self._targets is not None and self._cur != self.num_modules - 1:
            missing = self.boundaries[self._cur]
            raise RuntimeError(f'local boundary {missing!r} was not executed in the forward '
                               'pass: check local.boundaries against the model')
        return None

    def _tag(self, module, args, output):
        if self._armed and isinstance(output, torch.Tensor):
            setattr(output, _TAG, self._cur)
        return None

    def _detach_stale(self, module, args, output):
        """Stage outputs produced by an earlier (finished) module leave it
        detached: a neck or E2E auxiliary head must not reach back."""
        if not self._armed or self._targets is None:
            return None

        def fix(t):
            if isinstance(t, torch.Tensor) and getattr(t, _TAG, self._cur) < self._cur:
                return t.detach()
            return t

        if isinstance(output, torch.Tensor):
            return fix(output)
        if isinstance(output, (tuple, list)):
            return type(output)(fix(t) for t in output)
        return None

    def _boundary_hook(self, j: int):
        def hook(module, args, output):
            if not self._armed or self._targets is None:
                return None
            if not isinstance(output, torch.Tensor):
                raise TypeError(f'boundary {self.boundaries[j]} must return a tensor, '
                                f'got {type(output).__name__}')
            if self._cur != j:
                raise RuntimeError(f'local boundary {self.boundaries[j]} ran out of order')
            return self._on_boundary(j, output)
        return hook

    # ------------------------------------------------------- routing per module
    def _checked_backward(self, name: str):
        def backward(loss: torch.Tensor) -> None:
            if self.check_finite and not torch.isfinite(loss.detach()).all():
                raise FloatingPointError(
                    f'local loss {name} is {loss.item()} at module {name.split(".")[1]} '
                    f'({self.boundaries[int(name.split(".")[1][1:]) - 1]}): lower the '
                    'learning rate, add gradient clipping (optim_wrapper.clip_grad) or check '
                    'the inputs')
            self._backward(loss)
        return backward

    def _head_grad(self, head: nn.Module, h: torch.Tensor, weight: float,
                   patches: int, name: str) -> Optional[torch.Tensor]:
        """Run one head on a detached leaf copy of ``h``; return dL/dh."""
        leaf = h.detach().requires_grad_()
        feat = _as_map(leaf, self._grid(h), self._extra_tokens)
        out_size = tuple(self._targets.inputs.shape[-2:])
        backward = self._checked_backward(name)
        if patches > 1:
            losses = run_head_patched(head, feat, self._targets, out_size, weight,
                                      backward, patches)
        else:
            losses = run_head(head, feat, self._targets, out_size, weight, backward)
        for k, v in losses.items():
            self.log_vars[f'{name}.{k}'] = v
        return leaf.grad

    def _grid(self, h: torch.Tensor) -> Optional[Tuple[int, int]]:
        """Token grid of this forward: read from the patch embedding (which
        pads inputs that are not a multiple of the patch size)."""
        if h.dim() != 3 or self._probe_grid is None:
            return None
        if self._token_grid is not None:
            return self._token_grid
        gh0, gw0 = self._probe_grid
        ih, iw = self._targets.inputs.shape[-2:]
        return (math.ceil(ih * gh0 / self.probe_size[0]), math.ceil(iw * gw0 / self.probe_size[1]))

    def _record_grid(self, module, args, output):
        """mmpretrain's PatchEmbed returns (tokens, (h, w))."""
        if self._armed and isinstance(output, tuple) and len(output) == 2 \
                and isinstance(output[1], (tuple, list)):
            self._token_grid = tuple(int(v) for v in output[1])
        return None

    def _on_boundary(self, j: int, h: torch.Tensor) -> torch.Tensor:
        self._out[j] = h
        for hp in self.plan.at(j):
            heads = self.heads if hp.kind == 'independent' else self.cascade_heads
            if f'm{j + 1}' not in heads:  # removed by the user
                continue
            g = self._head_grad(heads[f'm{j + 1}'], h, hp.weight,
                                hp.patches if hp.pff == 'paper' else 1, f'local.{hp.key}')
            self._propagate(j, g, hp.reach)
        for m in range(j + 1):
            if self._last_user[m] == j:
                self._flush(m)
        nxt = h.detach()
        if self.window > 1:
            nxt.requires_grad_()
            self._inp[j + 1] = nxt
        self._cur = j + 1
        return nxt

    def _add_stop(self, m: int, g: Optional[torch.Tensor]) -> None:
        if g is not None:
            self._stop[m] = g if m not in self._stop else self._stop[m] + g

    def _propagate(self, top: int, g: Optional[torch.Tensor], start: int) -> None:
        """Carry the gradient ``g`` at module ``top``'s output down to module
        ``start`` (the window's first module), where it stops."""
        start = max(start, 0)
        m = top
        while g is not None and m > start:
            inp = self._inp[m]
            torch.autograd.backward(self._out[m], g, retain_graph=True)
            g, inp.grad = inp.grad, None
            m -= 1
        self._add_stop(start, g)

    def _flush(self, m: int) -> None:
        """Apply everything that stops at module m, then free its graph."""
        out = self._out.pop(m, None)
        g = self._stop.pop(m, None)
        if out is not None and g is not None and out.requires_grad:
            torch.autograd.backward(out, g)
        if m in self._inp:
            self._inp.pop(m).grad = None
        if self.on_module_done is not None:
            self.on_module_done(m)

    def finish(self) -> None:
        """After the task loss's backward: close the last cascade window
        (the task loss reaches back k-1 modules, weighted by the cascade
        weight) and apply what is left."""
        last = self.num_modules - 1
        below = self.plan.task_weight_below
        if below > 0 and last >= 1:
            inp = self._inp.get(last)
            g = None if inp is None or inp.grad is None else inp.grad * below
            if inp is not None:
                inp.grad = None
            self._propagate(last - 1, g, self.plan.task_reach)
        for m in sorted(self._out):
            self._flush(m)
        if any(hp.ema for hp in self.plan.heads):
            self.update_ema()
        self._inp.clear()
        self._stop.clear()
        self._targets = None
