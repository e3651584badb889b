"""Loading a locally trained checkpoint into a model trained without it."""
from mmengine.hooks import Hook
from mmengine.registry import HOOKS

from .checkpoint import LOCAL_LEARNER_PREFIX, local_learner_keys


@HOOKS.register_module()
class DropLocalLearnerHook(Hook):
    """Drop the ``local_learner.*`` keys of an older checkpoint's
    ``state_dict`` when the model being loaded does no local learning.

    mmengine loads non-strictly but lists every key the model lacks in a
    warning, one line per auxiliary tensor (150 for ResNet-32 K=16). A model
    that does local learning (resume, fine-tuning with a local config) keeps
    them. Entries beside the ``state_dict`` are never touched: a plain model
    does not read them.
    """

    priority = 'VERY_HIGH'

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        if _does_local_learning(runner):
            return
        state_dict = checkpoint.get('state_dict', checkpoint)
        removed = local_learner_keys(state_dict)
        for key in removed:
            del state_dict[key]
        if removed:
            runner.logger.info(
                f'Ignored {len(removed)} local-learning keys '
                f'({LOCAL_LEARNER_PREFIX}*) of the checkpoint: the model '
                'is evaluated without its auxiliary heads.')


def _does_local_learning(runner) -> bool:
    """Whether the runner's optim wrapper carries a learner (the only place
    one is built in a run; ``Runner.train`` builds it before loading)."""
    wrappers = getattr(runner, 'optim_wrapper', None)
    if wrappers is None or isinstance(wrappers, dict):  # not built (test)
        return False
    wrappers = getattr(wrappers, 'values', lambda: [wrappers])()  # OptimWrapperDict
    return any(getattr(w, 'learner', None) is not None for w in wrappers)
