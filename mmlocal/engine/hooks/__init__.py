from .local_loss_hook import LocalLossHook
from .random_state_hook import (RandomStateHook, epoch_seed, get_random_state,
                                seed_worker, set_random_state)

__all__ = ['LocalLossHook', 'RandomStateHook', 'epoch_seed', 'get_random_state',
           'seed_worker', 'set_random_state']
