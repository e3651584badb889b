"""Checkpoints of locally trained models, reduced to the plain task model.

Two layouts exist. Older checkpoints keep the local heads inside the model's
``state_dict`` (keys ``local_learner.*``); newer ones keep them beside it, as
a top-level ``local_learner`` entry or inside the optimizer wrapper's state
(``checkpoint['optimizer']['local_learner']``). Both reduce to what a plain
mmseg / mmpretrain / mmdet model loads strictly.
"""
from typing import Any, Dict, List

LOCAL_LEARNER_PREFIX = 'local_learner.'
LOCAL_LEARNER_KEY = 'local_learner'
TRAINING_STATE_KEYS = ('optimizer', 'message_hub', 'param_schedulers', 'random_states')


def local_learner_keys(state_dict: Dict[str, Any]) -> List[str]:
    """Keys of the auxiliary local-learning modules (heads, EMA copies)."""
    return [k for k in state_dict if k.startswith(LOCAL_LEARNER_PREFIX)]


def strip_local_learner(checkpoint: Dict[str, Any],
                        keep_training_state: bool = False) -> List[str]:
    """Remove the local learner (and, unless kept, the training state) in place.

    Works on a Runner checkpoint (``{'meta', 'state_dict', ...}``) or on a
    bare state dict, whatever the toolbox: only key names decide. Returns
    what was removed, for the user to read: ``local_learner.*`` state-dict
    keys, then ``local_learner`` / ``optimizer.local_learner`` entries and the
    training-state keys.
    """
    if isinstance(checkpoint.get('state_dict'), dict):
        state_dict, runner_checkpoint = checkpoint['state_dict'], True
    else:
        state_dict, runner_checkpoint = checkpoint, False
    removed = local_learner_keys(state_dict)
    for key in removed:
        del state_dict[key]
    if not runner_checkpoint:
        return removed
    if LOCAL_LEARNER_KEY in checkpoint:
        del checkpoint[LOCAL_LEARNER_KEY]
        removed.append(LOCAL_LEARNER_KEY)
    if keep_training_state:
        optimizer = checkpoint.get('optimizer')
        if isinstance(optimizer, dict) and LOCAL_LEARNER_KEY in optimizer:
            del optimizer[LOCAL_LEARNER_KEY]
            removed.append(f'optimizer.{LOCAL_LEARNER_KEY}')
    else:
        for key in TRAINING_STATE_KEYS:
            if key in checkpoint:
                del checkpoint[key]
                removed.append(key)
    return removed
