"""The Runner of a config, ready for local learning and locally trained checkpoints."""
from typing import Any

from mmengine.registry import RUNNERS
from mmengine.runner import Runner

from mmlocal.engine.hooks import LocalLossHook
from .hooks import DropLocalLearnerHook


def build_runner(cfg: Any) -> Runner:
    """mmengine's Runner, or the config's ``runner_type``, with
    ``DropLocalLearnerHook`` (a model trained or tested without local
    learning loads a locally trained checkpoint without a warning per
    auxiliary tensor) and ``LocalLossHook`` (local losses read, checked and
    logged once per iteration, outside the step) unless the config has it."""
    runner = RUNNERS.build(cfg) if 'runner_type' in cfg else Runner.from_cfg(cfg)
    runner.register_hook(DropLocalLearnerHook(), priority='VERY_HIGH')
    if not any(isinstance(h, LocalLossHook) for h in runner.hooks):
        runner.register_hook(LocalLossHook())
    return runner
