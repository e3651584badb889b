"""``LocalLossHook``: the local losses are read where mmengine reads the task loss.

A local-learning step computes K local losses during its forward. Reading
each one on the host (to log it, or to check it is finite) would wait for the
device once per loss, which E2E never does inside a step. So the optim
wrapper keeps them on the device (``mmlocal.local.loss_log``) and this hook
reads them once per iteration, right after mmengine's ``RuntimeInfoHook``
has read the task loss (``after_train_iter``): one host sync for all of them,
checked for NaN/Inf (``FloatingPointError`` naming the loss, the module and
its boundary), then logged as ``train/local.m3.loss_cls`` ...

The project's runtime config lists it in ``custom_hooks`` and
``mmlocal.apis.build_runner`` adds it when a config lacks it. Without it the
optim wrapper reads the losses itself at the end of each ``update_params``
(one host sync per step instead of one per loss), so nothing goes unchecked
or unlogged.
"""
from typing import Iterator

from mmengine.hooks import Hook

from mmlocal.registry import HOOKS

#: after RuntimeInfoHook (VERY_HIGH = 10), before PipelineHook (HIGH = 30, it
#: gathers the stages' local losses), LoggerHook and CheckpointHook
PRIORITY = 20


def local_wrappers(runner) -> Iterator:
    """The runner's local-learning optim wrappers (none before it built them)."""
    wrappers = getattr(runner, 'optim_wrapper', None)
    if wrappers is None or isinstance(wrappers, dict):  # a config, not built
        return
    for w in getattr(wrappers, 'values', lambda: [wrappers])():  # OptimWrapperDict
        if hasattr(w, 'pop_local_losses'):
            yield w


@HOOKS.register_module()
class LocalLossHook(Hook):
    """Reads, checks and logs the local losses once per iteration."""

    priority = PRIORITY

    def before_train(self, runner) -> None:
        for w in local_wrappers(runner):
            w.defer_local_losses(True)

    def after_train_iter(self, runner, batch_idx: int, data_batch=None,
                         outputs=None) -> None:
        for w in local_wrappers(runner):
            losses = w.pop_local_losses()
            if losses:
                losses.log(runner.message_hub)

    def after_train(self, runner) -> None:
        """``train_step`` called after training reads its own losses again."""
        for w in local_wrappers(runner):
            w.defer_local_losses(False)
