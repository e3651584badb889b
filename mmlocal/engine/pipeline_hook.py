"""``PipelineHook``: the whole model where mmengine's loops need it.

Between validations a pipelined rank holds the current parameters of its own
stage only, and later stages are up to S - 1 batches behind. Before a
validation, a checkpoint, the end of an epoch and the end of training the hook
drains the pipeline (every batch taken is processed by every stage) and
gathers every stage's parameters, buffers and optimizer state on every rank,
so validation sees the whole model and a checkpoint written by rank 0 holds
every stage (``--resume`` restores them all).

mmengine logs rank 0's message hub, i.e. stage 0's. At each logging
iteration the hook brings every stage's latest losses (its local losses, and
the task loss of the last stage) into rank 0's hub, so the log shows them all.
"""
from typing import Optional

import torch.distributed as torch_dist
from mmengine.hooks import Hook, LoggerHook
from mmengine.logging import MessageHub

from mmlocal.registry import HOOKS
from .hooks.checkpoint_due import checkpoint_due
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
            raise RuntimeError('PipelineHook needs '
                               "model_wrapper_cfg=dict(type='MMPipelineParallel') and "
                               'optim_wrapper.local.pipeline=dict(stages=S)')
        sampler = getattr(runner.train_dataloader, 'sampler', None)
        if not isinstance(sampler, PipelineSampler) or sampler.stages != pipe.stages:
            raise RuntimeError(
                'a pipelined run shares the data among the replicas of a stage, not among all '
                "processes: set train_dataloader.sampler=dict(type='PipelineSampler', "
                f'stages={pipe.stages}, shuffle=True)')

    def _pipeline(self, runner) -> Optional[Pipeline]:
        return getattr(runner.optim_wrapper, 'pipeline', None)

    def _sync(self, runner) -> None:
        pipe = self._pipeline(runner)
        if pipe is not None:
            pipe.flush(runner.optim_wrapper)
            pipe.gather()

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None) -> None:
        """Iteration-based loops: drain where a checkpoint (as the config's
        ``CheckpointHook`` decides it) or a validation follows this
        iteration, and at the last one."""
        if self._pipeline(runner) is None:
            return
        loop = runner.train_loop
        it = runner.iter + 1
        needs = it >= runner.max_iters or checkpoint_due(runner)
        if not hasattr(loop, 'max_epochs'):  # IterBasedTrainLoop validates by iteration
            interval, begin = getattr(loop, 'val_interval', 0), getattr(loop, 'val_begin', 1)
            needs |= bool(interval) and it >= begin and it % interval == 0
        if needs:
            self._sync(runner)
        logger = next((h for h in runner.hooks if isinstance(h, LoggerHook)), None)
        if logger is not None and (self.every_n_train_iters(runner, logger.interval) or
                                   self.end_of_epoch(runner.train_dataloader, batch_idx)):
            self._gather_logs(runner, outputs or {})

    @staticmethod
    def _gather_logs(runner, outputs: dict) -> None:
        pipe = runner.optim_wrapper.pipeline
        hub = MessageHub.get_current_instance()
        mine = {}
        if pipe.stage > 0 and pipe.rank_in_stage == 0:
            mine = {k: float(v.current()) for k, v in hub.log_scalars.items()
                    if k.startswith('train/local.')}
            mine.update({f'train/{k}': float(v) for k, v in outputs.items()})
        gathered = [None] * torch_dist.get_world_size()
        torch_dist.all_gather_object(gathered, mine)
        if torch_dist.get_rank() == 0:
            for values in gathered[1:]:
                for key, value in (values or {}).items():
                    hub.update_scalar(key, value)

    def after_train_epoch(self, runner) -> None:
        self._sync(runner)
