"""``PipelineHook``: the whole model where mmengine's loops need it.

Between validations a pipelined rank holds the current parameters of its own
stage only, and later stages are up to S - 1 batches behind. Before a
validation, a checkpoint, the end of an epoch and the end of training the hook
drains the pipeline (every batch taken is processed by every stage) and
gathers every stage's parameters, buffers and optimizer state on every rank,
so validation sees the whole model and a checkpoint written by rank 0 holds
every stage (``--resume`` restores them all).
"""
from typing import Optional

from mmengine.hooks import CheckpointHook, Hook

from mmlocal.registry import HOOKS
from .pipeline import Pipeline
from .pipeline_sampler import PipelineSampler


@HOOKS.register_module()
class PipelineHook(Hook):
    """Drains the pipeline and gathers every stage's state where the whole
    model is needed: before validation, before every checkpoint, at the end
    of each epoch (epoch-based loops) and of training."""

    priority = 'HIGH'  # before CheckpointHook and the validation loop

    def before_train(self, runner) -> None:
        pipe = self._pipeline(runner)
        if pipe is None:
            raise RuntimeError("PipelineHook needs model_wrapper_cfg=dict(type='MMPipelineParallel') "
                               'and optim_wrapper.local.pipeline=dict(stages=S)')
        sampler = getattr(runner.train_dataloader, 'sampler', None)
        if not isinstance(sampler, PipelineSampler) or sampler.stages != pipe.stages:
            raise RuntimeError(
                'a pipelined run shares the data among the replicas of a stage, not among all '
                "processes: set train_dataloader.sampler=dict(type='PipelineSampler', "
                f'stages={pipe.stages}, shuffle=True)')

    def _pipeline(self, runner) -> Optional[Pipeline]:
        return getattr(runner.model, 'pipeline', None)

    def _sync(self, runner) -> None:
        pipe = self._pipeline(runner)
        if pipe is not None:
            pipe.flush(runner.optim_wrapper)
            pipe.gather()

    def _checkpoint_interval(self, runner) -> Optional[int]:
        for hook in runner.hooks:
            if isinstance(hook, CheckpointHook) and hook.by_epoch is False:
                return hook.interval
        return None

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None) -> None:
        """Iteration-based loops: drain where a checkpoint or a validation
        follows this iteration, and at the last one."""
        if self._pipeline(runner) is None:
            return
        loop = runner.train_loop
        it = runner.iter + 1
        needs = it >= runner.max_iters
        ckpt = self._checkpoint_interval(runner)
        needs |= bool(ckpt) and it % ckpt == 0
        if not hasattr(loop, 'max_epochs'):  # IterBasedTrainLoop validates by iteration
            interval, begin = getattr(loop, 'val_interval', 0), getattr(loop, 'val_begin', 1)
            needs |= bool(interval) and it >= begin and it % interval == 0
        if needs:
            self._sync(runner)

    def after_train_epoch(self, runner) -> None:
        self._sync(runner)
