"""The Runner of a config, ready for a locally trained checkpoint."""
from typing import Any

from mmengine.registry import RUNNERS
from mmengine.runner import Runner

from .hooks import DropLocalLearnerHook


def build_runner(cfg: Any) -> Runner:
    """mmengine's Runner, or the config's ``runner_type``, with
    ``DropLocalLearnerHook``: a model trained or tested without local
    learning loads a locally trained checkpoint without a warning line per
    auxiliary tensor."""
    runner = RUNNERS.build(cfg) if 'runner_type' in cfg else Runner.from_cfg(cfg)
    runner.register_hook(DropLocalLearnerHook(), priority='VERY_HIGH')
    return runner
