"""Whether mmengine's ``CheckpointHook`` saves a checkpoint now, written once.

Hooks that must act before a checkpoint is written (the pipeline drains and
gathers every stage, ``RandomStateHook`` collects the generators of every
rank) ask the config's own ``CheckpointHook`` instances, with the test their
``after_train_iter`` / ``after_train_epoch`` make: every ``interval`` from
``save_begin`` on, and the last iteration or epoch when ``save_last``.
"""
from mmengine.hooks import CheckpointHook


def saves_checkpoint(hook: CheckpointHook, runner, by_epoch: bool = False) -> bool:
    """Whether ``hook`` saves at the end of this training iteration
    (``by_epoch=False``) or epoch (``by_epoch=True``)."""
    if hook.by_epoch != by_epoch:
        return False
    if by_epoch:
        return hook.every_n_epochs(runner, hook.interval, hook.save_begin) or (
            hook.save_last and hook.is_last_train_epoch(runner))
    return hook.every_n_train_iters(runner, hook.interval, hook.save_begin) or (
        hook.save_last and hook.is_last_train_iter(runner))


def checkpoint_due(runner, by_epoch: bool = False) -> bool:
    """Whether any ``CheckpointHook`` of ``runner`` saves at the end of this
    training iteration (or epoch, ``by_epoch=True``)."""
    return any(saves_checkpoint(h, runner, by_epoch) for h in runner.hooks
               if isinstance(h, CheckpointHook))
