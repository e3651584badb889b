from .checkpoint_due import checkpoint_due, saves_checkpoint
from .local_loss_hook import LocalLossHook
from .random_state_hook import (RandomStateHook, epoch_seed, get_random_state,
                                seed_worker, set_random_state)

__all__ = ['checkpoint_due', 'saves_checkpoint', 'LocalLossHook', 'RandomStateHook', 'epoch_seed',
           'get_random_state', 'seed_worker', 'set_random_state']
