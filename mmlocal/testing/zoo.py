"""The zoo sweep: model-zoo configs of the three toolboxes, trained locally.

Each :class:`ZooCase` names a config straight from a toolbox's zoo
(``mmpretrain::`` / ``mmseg::`` / ``mmdet::``) and the ``local`` delta a user
would add (``num_modules`` alone, unless the case says otherwise). The model
is built at random init (no checkpoint) and fed a small batch of real images
of the repository (Tiny-ImageNet images for classifiers, the Cityscapes
frame with its label map or its person/car boxes for segmentors and
detectors). :func:`check_case` then checks, on the model itself:

* ``k1``: a K=1 local step gives every parameter exactly the end-to-end
  gradient (same seed, same batch);
* ``grads``: a local step with the case's K gives every trainable parameter
  (model and local heads) a gradient;
* ``isolation``: module 1's gradients do not change when every parameter of
  the last module (its blocks, neck, task heads) is perturbed, while the
  last module's own gradients do change (the control that the perturbation
  reaches the loss);
* ``train_step``: one ``train_step`` with the config's own optimizer and
  ``clip_grad`` (the local-learning composition of its wrapper) gives finite
  losses and moves module 1's parameters.

``tools/analysis/zoo_sweep.py`` writes the table of ``docs/zoo.md``;
``tests/test_configs/test_zoo_sweep.py`` runs the same cases (``slow``).
"""
import contextlib
import copy
import glob
import logging
import os.path as osp
import time
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence, Tuple

import torch

from .local import build_local, local_step_grads
from .models import ROOT

IMAGENET_MINI = osp.join(ROOT, 'tests', 'data', 'imagenet_mini', 'train')
CITYSCAPES = osp.join(ROOT, 'tests', 'data', 'cityscapes')
FRAME = 'frankfurt_000000_000294'


@dataclass(frozen=True)
class ZooCase:
    """A zoo config, its local delta and the input size of the sweep."""
    config: str
    local: dict = field(default_factory=lambda: dict(num_modules=4))
    size: Optional[Tuple[int, int]] = None  # (H, W); None: the toolbox default
    options: Dict[str, object] = field(default_factory=dict)  # config overrides (cfg-options)
    why: str = ''  # why the case departs from num_modules alone / the defaults

    @property
    def toolbox(self) -> str:
        return self.config.split('::')[0]


#: input (H, W) per toolbox: Tiny-ImageNet images at 32x32, the Cityscapes frame at 1/4
#: (segmentation) and at its bundled 128x256 (detection)
DEFAULT_SIZE = {'mmpretrain': (32, 32), 'mmseg': (32, 64), 'mmdet': (128, 256)}
#: images per batch (BatchNorm in train mode needs two where features shrink to 1x1)
DEFAULT_BATCH = {'mmpretrain': 2, 'mmseg': 2, 'mmdet': 1}
FCOS_BOUNDARIES = ['layer2.3', 'layer3.2', 'layer3.5']

ZOO_CASES: List[ZooCase] = [
    # mmpretrain
    ZooCase('mmpretrain::convnext/convnext-tiny_32xb128_in1k.py'),
    ZooCase('mmpretrain::swin_transformer/swin-tiny_16xb64_in1k.py',
            options={'model.backbone.pad_small_map': True},
            why='pad_small_map: windows of 7 on a 32 px input'),
    ZooCase('mmpretrain::swin_transformer_v2/swinv2-tiny-w8_16xb64_in1k-256px.py',
            options={'model.backbone.pad_small_map': True},
            why='pad_small_map: windows of 8 on a 32 px input'),
    ZooCase('mmpretrain::deit/deit-tiny_4xb256_in1k.py'),
    ZooCase('mmpretrain::deit/deit-small-distilled_4xb256_in1k.py',
            local=dict(num_modules=4, method=dict(type='DGL'), hilo=dict(cascade=2)),
            why='HiLo windows (cascade 2); class and distillation tokens'),
    ZooCase('mmpretrain::regnet/regnetx-400mf_8xb128_in1k.py'),
    ZooCase('mmpretrain::resnext/resnext50-32x4d_8xb32_in1k.py',
            local=dict(num_modules=4, method=dict(type='InfoPro'))),
    ZooCase('mmpretrain::seresnet/seresnet50_8xb32_in1k.py'),
    ZooCase('mmpretrain::res2net/res2net50-w14-s8_8xb32_in1k.py'),
    ZooCase('mmpretrain::mobilenet_v2/mobilenet-v2_8xb32_in1k.py'),
    ZooCase('mmpretrain::mobilenet_v3/mobilenet-v3-small_8xb128_in1k.py'),
    ZooCase('mmpretrain::efficientnet/efficientnet-b0_8xb32_in1k.py'),
    # mmseg
    ZooCase('mmseg::segformer/segformer_mit-b0_8xb2-160k_ade20k-512x512.py'),
    ZooCase('mmseg::swin/swin-tiny-patch4-window7-in1k-pre_upernet_8xb2-160k_ade20k-512x512.py'),
    ZooCase('mmseg::pspnet/pspnet_r50-d8_4xb2-40k_cityscapes-512x1024.py',
            local=dict(num_modules=4, method=dict(type='InfoPro'))),
    ZooCase('mmseg::deeplabv3plus/deeplabv3plus_r50-d8_4xb2-40k_cityscapes-512x1024.py',
            local=dict(num_modules=4, method=dict(type='DGL'), hilo=dict(cascade=2),
                       pff=dict(patches=2)), why='HPFF (HiLo + PFF)'),
    ZooCase('mmseg::mobilenet_v2/mobilenet-v2-d8_deeplabv3_4xb2-80k_cityscapes-512x1024.py'),
    ZooCase('mmseg::hrnet/fcn_hr18s_4xb2-40k_cityscapes-512x1024.py',
            local=dict(num_modules=2), why='HRNet splits inside layer1 only (2 blocks)'),
    # mmdet
    ZooCase('mmdet::fcos/fcos_r50-caffe_fpn_gn-head_1x_coco.py',
            local=dict(boundaries=FCOS_BOUNDARIES, method=dict(type='DGL')),
            why="the project's boundaries; zoo clip_grad=35"),
    ZooCase('mmdet::retinanet/retinanet_x101-32x4d_fpn_1x_coco.py',
            options={'model.backbone.depth': 50}, why='ResNeXt depth 50 (101 in the zoo)'),
    ZooCase('mmdet::faster_rcnn/faster-rcnn_r50_fpn_1x_coco.py'),
    ZooCase('mmdet::swin/retinanet_swin-t-p4-w7_fpn_1x_coco.py'),
    ZooCase('mmdet::yolox/yolox_tiny_8xb8-300e_coco.py'),
    ZooCase('mmdet::rtmdet/rtmdet_tiny_8xb32-300e_coco.py'),
]


@dataclass
class ZooResult:
    """One case's outcome: ``checks`` maps each check to '' (passed) or why not."""
    case: ZooCase
    k: int = 0
    method: str = ''
    backbone: str = ''
    boundaries: List[str] = field(default_factory=list)
    heads: str = ''
    checks: Dict[str, str] = field(default_factory=dict)
    seconds: float = 0.
    cpu_seconds: float = 0.

    @property
    def passed(self) -> bool:
        return bool(self.checks) and not any(self.checks.values())

    @property
    def reason(self) -> str:
        return '; '.join(f'{k}: {v}' for k, v in self.checks.items() if v)


# ------------------------------------------------------------------ data
def _classification_batch(n: int, size: Tuple[int, int]) -> dict:
    import mmcv
    from mmpretrain.structures import DataSample
    files = sorted(glob.glob(osp.join(IMAGENET_MINI, '*', '*.JPEG')))
    classes = sorted({osp.basename(osp.dirname(f)) for f in files})
    inputs, samples = [], []
    for f in files[::len(files) // n][:n]:
        img = mmcv.imresize(mmcv.imread(f, channel_order='rgb'), size[::-1])
        inputs.append(torch.from_numpy(img).permute(2, 0, 1).contiguous())
        samples.append(DataSample().set_gt_label(classes.index(osp.basename(osp.dirname(f)))))
    return dict(inputs=inputs, data_samples=samples)


def _segmentation_batch(n: int, size: Tuple[int, int]) -> dict:
    """The frame and its train-id label map, resized to ``size``, n times."""
    import mmcv
    from mmengine.structures import PixelData
    from mmseg.structures import SegDataSample
    img = mmcv.imread(osp.join(CITYSCAPES, 'leftImg8bit/val/frankfurt',
                               f'{FRAME}_leftImg8bit.png'), channel_order='rgb')
    seg = mmcv.imread(osp.join(CITYSCAPES, 'gtFine/val/frankfurt',
                               f'{FRAME}_gtFine_labelTrainIds.png'), flag='unchanged')
    h, w = size
    img = mmcv.imresize(img, (w, h))
    seg = mmcv.imresize(seg, (w, h), interpolation='nearest')
    x = torch.from_numpy(img).permute(2, 0, 1).contiguous()
    samples = []
    for _ in range(n):
        s = SegDataSample(metainfo=dict(img_shape=(h, w), ori_shape=(h, w), pad_shape=(h, w)))
        s.gt_sem_seg = PixelData(data=torch.from_numpy(seg)[None].long())
        samples.append(s)
    return dict(inputs=[x] * n, data_samples=samples)


def real_batch(toolbox: str, n: int, size: Tuple[int, int]) -> dict:
    """``n`` real images of the repository as a packed batch of ``toolbox``."""
    if toolbox == 'mmpretrain':
        return _classification_batch(n, size)
    if toolbox == 'mmseg':
        return _segmentation_batch(n, size)
    from .detection import frame_batch
    return frame_batch(n)


# ----------------------------------------------------------------- model
def zoo_config(case: ZooCase):
    """The zoo config, ready for a random-init build on this machine: no
    checkpoint, the segmentor's padding to the case's size, no AMP."""
    from mmengine.hub import get_config
    cfg = get_config(case.config)
    cfg.merge_from_dict(dict(case.options))
    cfg.model.pop('pretrained', None)
    for part in ('backbone', 'neck'):
        if isinstance(cfg.model.get(part), dict):
            cfg.model[part].pop('init_cfg', None)
    pre = cfg.model.get('data_preprocessor')
    if case.toolbox == 'mmseg' and pre is not None:
        pre['size'] = case.size or DEFAULT_SIZE['mmseg']
    wrapper = cfg.get('optim_wrapper', {})
    if wrapper.get('type') == 'AmpOptimWrapper':  # no GPU here: the same wrapper without AMP
        wrapper['type'] = 'OptimWrapper'
        wrapper.pop('loss_scale', None)
        wrapper.pop('dtype', None)
    return cfg


def build_zoo_model(cfg, seed: int = 0) -> torch.nn.Module:
    from mmengine.model import revert_sync_batchnorm
    from mmlocal.apis import build_model
    torch.manual_seed(seed)
    model = revert_sync_batchnorm(build_model(cfg))  # PyTorch's own random init
    model.train()
    return model


# ----------------------------------------------------------------- checks
@contextlib.contextmanager
def torch_threads(n: Optional[int]):
    """Run with ``n`` intra-op threads (``None``: as set), restored after.

    The sweep's inputs are tiny, so its ops gain nothing from more threads;
    on a shared machine OpenMP threads that wait for a busy core cost far
    more (docs/zoo.md: the same cases with 2 threads took 4 times the CPU
    time of 1)."""
    old = torch.get_num_threads()
    if n is not None:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(old)


def _e2e_grads(model, data) -> Dict[str, torch.Tensor]:
    model.zero_grad(set_to_none=True)
    loss, _ = model.parse_losses(model._run_forward(data, mode='loss'))
    loss.backward()
    out = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
    model.zero_grad(set_to_none=True)
    return out


def _close(got: torch.Tensor, want: torch.Tensor) -> bool:
    scale = want.abs().max().item()
    return torch.allclose(got, want, rtol=1e-4, atol=1e-5 * scale + 1e-12)


def _diff(got: Dict[str, torch.Tensor], want: Dict[str, torch.Tensor],
          names: Sequence[str]) -> List[str]:
    return [n for n in names if (n in got) != (n in want)
            or (n in got and not _close(got[n], want[n]))]


def first_and_last(model, boundaries: Sequence[str]) -> Tuple[List[str], List[str]]:
    """Trainable parameters of the blocks of module 1, and of the last
    module: its blocks and everything outside the backbone (neck, task
    heads). Read from the block list and the boundaries alone."""
    from mmlocal.local.block_lists import block_paths
    paths = block_paths(model)
    cuts = [paths.index(b) for b in boundaries]

    def owned(blocks: Sequence[str], outside: bool) -> List[str]:
        return [n for n, p in model.named_parameters() if p.requires_grad and (
            any(n.startswith(b + '.') for b in blocks)
            or (outside and not n.startswith('backbone.')))]

    return owned(paths[:cuts[0] + 1], False), owned(paths[cuts[-1] + 1:], True)


def _method_name(local: dict) -> str:
    name = dict(local.get('method') or dict(type='DGL'))['type']
    if local.get('hilo'):
        name += '+HiLo'
    if local.get('pff'):
        name += '+PFF'
    return name


def perturbed_train_step(model, wrapper, raw: dict, reference: Dict[str, torch.Tensor],
                         first: Sequence[str], last: Sequence[str],
                         seed: int = 0) -> Dict[str, str]:
    """The ``isolation`` and ``train_step`` checks: every parameter of
    ``last`` (the last module, neck and task heads) perturbed, one
    ``model.train_step`` on ``raw``. Module 1's (``first``) gradients, read
    as they accumulate (before clipping and the optimizer step), must equal
    ``reference`` (the same step unperturbed), the last module's must not
    (the control), the losses must be finite and module 1 must move."""
    params = dict(model.named_parameters())
    with torch.no_grad():
        for n in last:
            params[n].add_(torch.randn_like(params[n]) * 0.05)
    again: Dict[str, torch.Tensor] = {}
    handles = [params[n].register_post_accumulate_grad_hook(
        lambda p, n=n: again.__setitem__(n, p.grad.clone())) for n in [*first, *last]]
    before = {n: params[n].detach().clone() for n in first}
    try:
        wrapper.zero_grad()  # as after every Runner step
        torch.manual_seed(seed)
        log = model.train_step(copy.deepcopy(raw), wrapper)
    finally:
        for h in handles:
            h.remove()
    moved = _diff(again, reference, first)
    control = _diff(again, reference, [n for n in last if n in reference])
    bad_loss = [k for k, v in log.items() if not torch.isfinite(v).all()]
    still = [n for n in first if torch.equal(before[n], params[n])]
    return dict(
        isolation='module 1 has no trainable parameter' if not first else
        f'module 1 gradient changes with the last module: {moved[0]}' if moved else
        'the perturbation changed no gradient of the last module' if not control else '',
        train_step=f'non-finite {bad_loss}' if bad_loss else
        f'{len(still)} of module 1\'s parameters did not move, e.g. {still[0]}' if still else '')


def check_case(case: ZooCase, seed: int = 0, batch_size: Optional[int] = None,
               threads: Optional[int] = 1) -> ZooResult:
    """Run the four checks of the module docstring on one case, with
    ``threads`` intra-op threads (see :func:`torch_threads`).

    The model is built once: the K=1 learner is removed before the case's
    own learner is attached to the same model.

    Every pass starts from ``seed`` before the data preprocessor (batch
    augmentations draw from it) and the forward (dropout, drop path), so the
    passes see the same batch and masks. The isolation check is read from
    the ``train_step`` itself: module 1's gradients as they accumulate,
    before clipping and the optimizer step; as a control, the perturbation
    must change the last module's gradients.
    """
    with torch_threads(threads):
        return _check_case(case, seed, batch_size)


def _check_case(case: ZooCase, seed: int, batch_size: Optional[int]) -> ZooResult:
    from mmengine.logging import MessageHub, MMLogger
    from mmengine.optim import build_optim_wrapper
    from mmlocal.apis.builder import init_config_scope

    logger = MMLogger.get_current_instance()
    level = logger.level
    logger.setLevel(logging.WARNING)  # no init report, no plan table per case
    t0, c0 = time.perf_counter(), time.process_time()
    result = ZooResult(case, method=_method_name(case.local))
    try:
        cfg = zoo_config(case)
        init_config_scope(cfg)
        MessageHub.get_current_instance().update_info('iter', 0)  # as the Runner (YOLOX reads it)
        model = build_zoo_model(cfg, seed)
        result.backbone = type(model.backbone).__name__
        raw = real_batch(case.toolbox, batch_size or DEFAULT_BATCH[case.toolbox],
                         case.size or DEFAULT_SIZE[case.toolbox])
        names = [n for n, p in model.named_parameters() if p.requires_grad]

        def batch() -> dict:
            torch.manual_seed(seed)
            return model.data_preprocessor(copy.deepcopy(raw), True)

        # K=1 equals E2E
        want = _e2e_grads(model, batch())
        method = {k: v for k, v in case.local.items()
                  if k not in ('num_modules', 'boundaries', 'hilo', 'pff')}
        one = build_local(model, dict(method, num_modules=1))
        got = local_step_grads(model, one, batch())
        bad = _diff(got, want, names)
        result.checks['k1'] = f'{len(bad)} parameters differ from E2E, e.g. {bad[0]}' \
            if bad else ''

        # the case's K with the zoo's own optimizer and clipping: every
        # trainable parameter gets a gradient
        ow = copy.deepcopy(cfg.optim_wrapper)
        ow.update(constructor='LocalLearningOptimWrapperConstructor', local=dict(case.local))
        ow.pop('_delete_', None)
        wrapper = build_optim_wrapper(model, ow)
        learner = wrapper.learner
        result.k = learner.num_modules
        result.boundaries = [b[len('backbone.'):] for b in learner.boundaries]
        result.heads = ', '.join(sorted({type(h).__name__ for h in learner.heads.values()}))
        got = local_step_grads(model, wrapper, batch())
        missing = [n for n in names if n not in got]
        missing += [f'local_learner.{n}' for n, p in learner.named_parameters()
                    if p.requires_grad and p.grad is None]
        result.checks['grads'] = f'no gradient for {len(missing)} parameters, e.g. ' \
            f'{missing[0]}' if missing else ''

        # the last module perturbed, one train_step: isolation, train_step
        first, last = first_and_last(model, learner.boundaries)
        result.checks.update(perturbed_train_step(model, wrapper, raw, got, first, last, seed))
    except Exception as e:  # noqa: BLE001  (the table reports it)
        result.checks['error'] = f'{type(e).__name__}: {e}'.splitlines()[0][:300]
    finally:
        logger.setLevel(level)
        result.seconds = time.perf_counter() - t0
        result.cpu_seconds = time.process_time() - c0
    return result


def format_table(results: Sequence[ZooResult]) -> str:
    """The sweep as a markdown table."""
    lines = ['| config | backbone | K | method | boundaries | local heads | result | seconds '
             '(wall / CPU) |', '|---|---|---:|---|---|---|---|---:|']
    for r in results:
        status = 'pass' if r.passed else f'FAIL: {r.reason}'
        extra = f' ({r.case.why})' if r.case.why else ''
        bounds = ', '.join(r.boundaries)
        lines.append(f'| `{r.case.config}`{extra} | {r.backbone} | {r.k} | {r.method} | '
                     f'{bounds} | {r.heads} | {status} | {r.seconds:.1f} / {r.cpu_seconds:.1f} |')
    return '\n'.join(lines)
