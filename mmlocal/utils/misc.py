"""Config and checkpoint helpers shared by ``tools/train.py`` and ``tools/test.py``.

They keep the tools thin: everything here is a plain function of a config or
a checkpoint, so it is testable without launching a tool.
"""
import copy
from typing import Any, Dict, List, Optional

import torch

LOCAL_LEARNER_PREFIX = 'local_learner.'
TRAINING_STATE_KEYS = ('optimizer', 'message_hub', 'param_schedulers', 'random_states')


def default_scope_of(cfg) -> Optional[str]:
    """The toolbox a config belongs to (``mmseg``, ``mmpretrain``, ``mmdet``)."""
    return cfg.get('default_scope', None)


def local_learner_keys(state_dict: Dict[str, Any]) -> List[str]:
    """Keys of the auxiliary local-learning modules (heads, EMA copies)."""
    return [k for k in state_dict if k.startswith(LOCAL_LEARNER_PREFIX)]


def strip_local_learner(checkpoint: Dict[str, Any],
                        keep_training_state: bool = False) -> List[str]:
    """Remove the auxiliary modules (and training state) from a checkpoint.

    Works in place on a Runner checkpoint (``{'meta', 'state_dict', ...}``)
    or on a bare state dict, whatever the toolbox: it only looks at key
    prefixes. Returns what was removed, for the user to read.
    """
    if 'state_dict' in checkpoint and isinstance(checkpoint['state_dict'], dict):
        state_dict = checkpoint['state_dict']
        top_level = True
    else:
        state_dict = checkpoint
        top_level = False
    removed = local_learner_keys(state_dict)
    for key in removed:
        del state_dict[key]
    if top_level and not keep_training_state:
        for key in TRAINING_STATE_KEYS:
            if key in checkpoint:
                del checkpoint[key]
                removed.append(key)
    return removed


def replace_sync_bn(cfg: Any) -> int:
    """Turn every ``SyncBN`` norm config into ``BN`` (in place); count them.

    ``nn.SyncBatchNorm`` only synchronises CUDA tensors; with CPU processes
    (gloo) each rank keeps its own batch statistics, as plain BN does.
    """
    count = 0
    if isinstance(cfg, dict):
        if cfg.get('type') in ('SyncBN', 'MMSyncBN', 'TorchSyncBN'):
            cfg['type'] = 'BN'
            count += 1
        for value in cfg.values():
            count += replace_sync_bn(value)
    elif isinstance(cfg, (list, tuple)):
        for value in cfg:
            count += replace_sync_bn(value)
    return count


def setup_cpu_distributed(cfg, launcher: str) -> bool:
    """Make a distributed launch work on CPU-only machines; no-op with CUDA.

    mmengine defaults to the NCCL backend and to DDP with
    ``device_ids=[LOCAL_RANK]``; both need a GPU. On CPU we switch to gloo,
    let DDP keep the module on CPU (``device_ids=None``) and replace SyncBN
    by BN. Returns True when the config was changed.
    """
    if launcher == 'none' or torch.cuda.is_available():
        return False
    if cfg.get('env_cfg', None) is None:
        cfg.env_cfg = dict()
    if cfg.env_cfg.get('dist_cfg', None) is None:
        cfg.env_cfg['dist_cfg'] = dict()
    dist_cfg = cfg.env_cfg['dist_cfg']
    if dist_cfg.get('backend', 'nccl') == 'nccl':
        dist_cfg['backend'] = 'gloo'
    wrapper = cfg.get('model_wrapper_cfg', None)
    if wrapper is None:
        cfg.model_wrapper_cfg = dict(
            type='MMDistributedDataParallel',
            device_ids=None,
            broadcast_buffers=False,
            find_unused_parameters=cfg.get('find_unused_parameters', False))
    elif _is_ddp(wrapper.get('type', 'MMDistributedDataParallel')):
        wrapper['device_ids'] = None
    replace_sync_bn(cfg.model)
    return True


def _is_ddp(wrapper_type: Any) -> bool:
    from mmengine.registry import MODEL_WRAPPERS
    from torch.nn.parallel import DistributedDataParallel
    if isinstance(wrapper_type, str):
        wrapper_type = MODEL_WRAPPERS.get(wrapper_type)
    return isinstance(wrapper_type, type) and issubclass(
        wrapper_type, DistributedDataParallel)


def init_cpu_distributed(cfg, launcher: str) -> bool:
    """Initialise the process group of a CPU-only distributed launch.

    mmengine's ``init_dist`` calls ``torch.cuda.set_device(local_rank)``,
    which a CPU build of torch cannot do; we run it with that call made a
    no-op. The Runner then finds the group initialised and uses it.
    Returns True when it initialised the group.
    """
    from mmengine.dist import init_dist, is_distributed
    if launcher == 'none' or torch.cuda.is_available() or is_distributed():
        return False
    dist_cfg = dict(cfg.get('env_cfg', {}).get('dist_cfg', {}))
    dist_cfg.setdefault('backend', 'gloo')
    set_device = torch.cuda.set_device
    torch.cuda.set_device = lambda device: None
    try:
        init_dist(launcher, **dist_cfg)
    finally:
        torch.cuda.set_device = set_device
    return True


def close_distributed() -> None:
    """Leave the default process group at the end of a distributed launch.

    Without it, gloo's worker threads can outlive the interpreter and abort a
    finished run at exit (``terminate called without an active exception``,
    pytorch/pytorch#190489); NCCL warns. The barrier keeps a rank from
    leaving while another still runs a collective (e.g. the last validation).
    """
    import torch.distributed as dist
    if dist.is_available() and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()


def set_default_collate(cfg) -> None:
    """mmpretrain's tools batch with ``default_collate``; do the same."""
    if default_scope_of(cfg) != 'mmpretrain':
        return
    for field in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        if cfg.get(field, None) is not None:
            cfg[field].setdefault('collate_fn', dict(type='default_collate'))


def enable_amp(cfg) -> None:
    """Apply ``--amp`` to the optim wrapper (local learning does its own AMP).

    ``LocalLearningOptimWrapper`` scales every local backward itself, so it
    takes a flag; any other wrapper becomes mmengine's ``AmpOptimWrapper``,
    as mmpretrain's ``tools/train.py`` does.
    """
    if not torch.cuda.is_available():
        raise RuntimeError(
            '--amp needs a CUDA GPU (automatic mixed precision with a '
            'loss scaler); none is available here. Run without --amp.')
    optim_wrapper = cfg.optim_wrapper
    if optim_wrapper.get('type', 'OptimWrapper') == 'LocalLearningOptimWrapper':
        optim_wrapper['amp'] = True
    else:
        optim_wrapper['type'] = 'AmpOptimWrapper'
        optim_wrapper.setdefault('loss_scale', 'dynamic')


def enable_auto_scale_lr(cfg) -> None:
    """Turn on mmengine's linear LR scaling; the config must give its base."""
    auto = cfg.get('auto_scale_lr', None)
    if not auto or 'base_batch_size' not in auto:
        raise RuntimeError(
            '--auto-scale-lr needs `auto_scale_lr = dict(base_batch_size=N)` '
            'in the config (N: the total batch size the learning rate was '
            'tuned for).')
    auto['enable'] = True


def enable_visualization(cfg, show_dir: str) -> None:
    """Save painted predictions to ``show_dir`` with the toolbox's own hook."""
    hooks = cfg.get('default_hooks', {}) or {}
    if 'visualization' not in hooks:
        raise RuntimeError(
            '--show-dir needs a visualization hook in `default_hooks`, e.g. '
            '`default_hooks = dict(visualization=dict('
            "type='SegVisualizationHook'))`.")
    hook = hooks['visualization']
    scope = default_scope_of(cfg)
    if scope == 'mmpretrain':  # VisualizationHook(enable, out_dir)
        hook['enable'] = True
        hook['out_dir'] = show_dir
        hook.setdefault('interval', 1)  # its default (5000) paints nothing
    elif scope == 'mmdet':  # DetVisualizationHook(draw, test_out_dir)
        hook['draw'] = True
        hook['test_out_dir'] = show_dir
    else:  # mmseg: SegVisualizationHook(draw) saves through the visualizer
        hook['draw'] = True
        cfg.visualizer['save_dir'] = show_dir


def enable_tta(cfg) -> None:
    """Swap in the test-time-augmentation model and pipeline (``--tta``).

    Same as the toolboxes' own ``tools/test.py``; mmpretrain configs without
    TTA settings get mmpretrain's default (flip, averaged scores).
    """
    from mmengine.config import ConfigDict
    if default_scope_of(cfg) == 'mmpretrain':
        if 'tta_model' not in cfg:
            cfg.tta_model = dict(type='mmpretrain.AverageClsScoreTTA')
        if 'tta_pipeline' not in cfg:
            test_pipeline = cfg.test_dataloader.dataset.pipeline
            cfg.tta_pipeline = copy.deepcopy(test_pipeline)
            cfg.tta_pipeline[-1] = dict(
                type='TestTimeAug',
                transforms=[[dict(type='RandomFlip', prob=1.),
                             dict(type='RandomFlip', prob=0.)],
                            [test_pipeline[-1]]])
    missing = [k for k in ('tta_model', 'tta_pipeline') if k not in cfg]
    if missing:
        raise RuntimeError(
            f'--tta needs {" and ".join(missing)} in the config, e.g. '
            "`tta_model = dict(type='SegTTAModel')` and a `tta_pipeline` "
            "ending in `dict(type='TestTimeAug', transforms=[...])`.")
    cfg.model = ConfigDict(**cfg.tta_model, module=cfg.model)
    cfg.test_dataloader.dataset.pipeline = cfg.tta_pipeline


def enable_dump(cfg, out: str) -> Optional[Any]:
    """Prepare ``--out``: mmseg writes prediction maps to a folder, the
    others pickle their predictions. Returns the metric to append to the
    runner's test evaluator (None for mmseg, which uses ``output_dir``)."""
    if default_scope_of(cfg) == 'mmseg':
        evaluator = cfg.test_evaluator
        if isinstance(evaluator, (list, tuple)):
            evaluator = evaluator[0]
        evaluator['output_dir'] = out
        evaluator['keep_results'] = True
        return None
    if not out.endswith(('.pkl', '.pickle')):
        raise ValueError(f'--out must be a .pkl file, got {out!r}')
    if default_scope_of(cfg) == 'mmdet':
        from mmdet.evaluation import DumpDetResults
        return DumpDetResults(out_file_path=out)
    from mmengine.evaluator import DumpResults
    return DumpResults(out_file_path=out)


def drop_local_learner_on_load(runner) -> None:
    """Let a plain (test-time) model load a locally trained checkpoint quietly.

    Checkpoints of local learning carry ``local_learner.*`` keys (auxiliary
    heads) that the task model lacks. mmengine loads non-strictly but lists
    every such key in a warning; we drop them in ``after_load_checkpoint``
    unless the model being loaded has a ``local_learner`` itself (resume).
    """
    from mmengine.hooks import Hook
    from mmengine.model import is_model_wrapper

    class _DropLocalLearnerHook(Hook):
        priority = 'VERY_HIGH'

        def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
            model = runner.model
            while is_model_wrapper(model) or hasattr(model, 'module'):
                model = model.module
            if hasattr(model, 'local_learner'):
                return
            removed = strip_local_learner(checkpoint, keep_training_state=True)
            if removed:
                runner.logger.info(
                    f'Ignored {len(removed)} local-learning keys '
                    f'({LOCAL_LEARNER_PREFIX}*) of the checkpoint: the model '
                    'is evaluated without its auxiliary heads.')

    runner.register_hook(_DropLocalLearnerHook(), priority='VERY_HIGH')
