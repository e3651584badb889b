from .random_state_hook import (RandomStateHook, epoch_seed, get_random_state,
                                seed_worker, set_random_state)

__all__ = ['RandomStateHook', 'epoch_seed', 'get_random_state', 'seed_worker',
           'set_random_state']
