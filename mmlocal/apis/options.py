"""What the options of ``tools/train.py`` and ``tools/test.py`` do to a
config, as the toolboxes' own tools do it (in place)."""
from typing import Any, Optional

from mmengine.config import ConfigDict

from .toolboxes import get_toolbox

#: devices mmengine's ``AmpOptimWrapper`` runs on
AMP_DEVICES = ('cuda', 'npu', 'mlu', 'musa')


def enable_amp(cfg: Any) -> None:
    """``--amp``: mmengine's ``AmpOptimWrapper`` with a dynamic loss scale, as
    the toolboxes' ``tools/train.py`` do. A local-learning config keeps its
    constructor, which composes local learning with the AMP wrapper."""
    cfg.optim_wrapper['type'] = 'AmpOptimWrapper'
    cfg.optim_wrapper.setdefault('loss_scale', 'dynamic')


def check_amp_available() -> None:
    """Refuse ``--amp`` before anything is built on a machine where mmengine's
    ``AmpOptimWrapper`` cannot run (it needs CUDA, or an NPU/MLU/MUSA)."""
    from mmengine.device import get_device
    if get_device() not in AMP_DEVICES:
        raise RuntimeError(
            '--amp needs a CUDA GPU (or an NPU, MLU or MUSA device) for '
            "mmengine's AmpOptimWrapper; this machine has none. Train "
            'without --amp.')


def enable_auto_scale_lr(cfg: Any) -> None:
    """``--auto-scale-lr``: mmengine's linear LR scaling; the config must
    give the batch size its learning rate was tuned for."""
    auto = cfg.get('auto_scale_lr', None)
    if not auto or 'base_batch_size' not in auto:
        raise RuntimeError(
            '--auto-scale-lr needs `auto_scale_lr = dict(base_batch_size=N)` '
            'in the config (N: the total batch size the learning rate was '
            'tuned for).')
    auto['enable'] = True


def set_default_collate(cfg: Any) -> None:
    """The collate function the config's toolbox batches with in its tools."""
    get_toolbox(cfg).set_default_collate(cfg)


def enable_visualization(cfg: Any, show_dir: str) -> None:
    """``--show-dir``: save painted predictions with the toolbox's own hook."""
    get_toolbox(cfg).enable_visualization(cfg, show_dir)


def enable_tta(cfg: Any) -> None:
    """``--tta``: swap in the test-time-augmentation model and pipeline.

    Same as the toolboxes' own ``tools/test.py``; mmpretrain configs without
    TTA settings get mmpretrain's default (flip, averaged scores).
    """
    get_toolbox(cfg).default_tta(cfg)
    missing = [k for k in ('tta_model', 'tta_pipeline') if k not in cfg]
    if missing:
        raise RuntimeError(
            f'--tta needs {" and ".join(missing)} in the config, e.g. '
            "`tta_model = dict(type='SegTTAModel')` and a `tta_pipeline` "
            "ending in `dict(type='TestTimeAug', transforms=[...])`.")
    cfg.model = ConfigDict(**cfg.tta_model, module=cfg.model)
    cfg.test_dataloader.dataset.pipeline = cfg.tta_pipeline


def enable_dump(cfg: Any, out: str) -> Optional[Any]:
    """``--out``: mmseg writes prediction maps to a folder, the others pickle
    their predictions. Returns the metric to append to the runner's test
    evaluator (None when the toolbox's evaluator writes them itself)."""
    return get_toolbox(cfg).dump_metric(cfg, out)
