"""Exact resume: random-number state in checkpoints, data-worker seeds per epoch.

mmengine's checkpoint holds weights, optimizer, schedulers and message hub,
but not the generators that draw crops, flips, Mixup or dropout, so a resumed
run draws other numbers than the straight run from its first iteration on.
And its default ``worker_init_fn`` seeds data workers with
``seed + rank * num_workers + worker_id`` alone: with non-persistent workers
every epoch replays the same random stream.

* :class:`RandomStateHook` stores the python ``random``, numpy and torch
  (CPU, CUDA) generator states of every rank in each checkpoint
  (``checkpoint['random_states']``) and restores them, on resume, at the point
  where the straight run saved them: before anything else of the first resumed
  epoch (epoch loops), or right after mmengine's ``IterBasedTrainLoop`` has
  replayed the batches it skips (iteration loops). Validation during training
  is made neutral (the states are put back after it), so a run draws the same
  numbers with or without validation, and a checkpoint saved before validation
  resumes into what the straight run draws after it.
* The base seed of the train loader's workers is drawn from a generator seeded
  by ``(seed, epoch, rank)`` (:func:`epoch_seed`) and :func:`seed_worker` seeds
  each worker's ``random``, numpy and torch from it: every epoch draws new
  augmentations, and a resumed epoch the same as the straight one.

Limits: states are restored only with the world size they were saved with
(each rank gets its own; with another world size the run continues, warned,
not bit-exact). Epoch loops resume exactly from epoch-end checkpoints only
(mmengine restarts an interrupted epoch). Persistent workers of an epoch loop
carry their random state from epoch to epoch, which a resumed run cannot
rebuild: use ``persistent_workers=False`` for exact resume (warned).
"""
import functools
import random
from typing import Any, Dict, Iterator, List, Optional

import numpy as np
import torch
from mmengine.dataset import worker_init_fn as mmengine_worker_init_fn
from mmengine.dist import all_gather_object, get_rank, get_world_size
from mmengine.hooks import Hook
from torch.utils.data import DataLoader, get_worker_info

from mmlocal.registry import FUNCTIONS, HOOKS
from .checkpoint_due import checkpoint_due
from mmlocal.utils.mmengine_adapter import infinite_dataloader_iterator

#: Checkpoint key of the random states (beside 'state_dict', 'optimizer', ...).
RANDOM_STATES_KEY = 'random_states'


# ------------------------------------------------------------ the states
def get_random_state() -> Dict[str, Any]:
    """This process's generator states, in types a weights-only load accepts."""
    np_state = np.random.get_state(legacy=False)
    state = dict(
        python=random.getstate(),
        numpy=dict(bit_generator=np_state['bit_generator'],
                   key=torch.from_numpy(np_state['state']['key'].astype(np.int64)),
                   pos=int(np_state['state']['pos']),
                   has_gauss=int(np_state['has_gauss']),
                   gauss=float(np_state['gauss'])),
        torch=torch.get_rng_state())
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state['cuda'] = torch.cuda.get_rng_state()
    return state


def set_random_state(state: Dict[str, Any]) -> None:
    """Inverse of :func:`get_random_state`."""
    random.setstate(state['python'])
    np_state = state['numpy']
    np.random.set_state(dict(
        bit_generator=np_state['bit_generator'],
        state=dict(key=np_state['key'].numpy().astype(np.uint32),
                   pos=np_state['pos']),
        has_gauss=np_state['has_gauss'], gauss=np_state['gauss']))
    torch.set_rng_state(state['torch'])
    if 'cuda' in state and torch.cuda.is_available():
        torch.cuda.set_rng_state(state['cuda'])


# ---------------------------------------------------------- data workers
def epoch_seed(seed: int, epoch: int, rank: int) -> int:
    """A 63-bit seed that differs for every (seed, epoch, rank)."""
    entropy = [int(seed) % 2**64, int(epoch), int(rank)]
    word = np.random.SeedSequence(entropy).generate_state(1, dtype=np.uint64)[0]
    return int(word) & (2**63 - 1)


@FUNCTIONS.register_module()
def seed_worker(worker_id: int) -> None:
    """``worker_init_fn``: seed ``random``, numpy and torch from the worker's
    own seed (torch's base seed of this loader iteration + ``worker_id``).

    mmengine's default replaces that seed by one fixed for the whole run; this
    keeps it, so every epoch draws anew. With :class:`RandomStateHook` the base
    seed is a function of (seed, epoch, rank); without it, torch draws it from
    the main process's generator (reproducible from the run's seed).
    Config: ``train_dataloader = dict(worker_init_fn=dict(type='seed_worker'))``.
    """
    seed = get_worker_info().seed
    random.seed(seed)
    torch.manual_seed(seed)
    np.random.seed(np.random.SeedSequence(seed).generate_state(4))


# ------------------------------------------------------------- the hook
class _RestoreAfterReplay:
    """Wraps ``IterBasedTrainLoop.dataloader_iterator``: lets the loop replay
    the ``skip`` batches already trained, then restores ``state`` before the
    first new batch is drawn, where the straight run saved it."""

    def __init__(self, iterator: Iterator, skip: int, state: Dict[str, Any]) -> None:
        self.iterator = iterator
        self.skip = skip
        self.state: Optional[Dict[str, Any]] = state

    def __iter__(self) -> '_RestoreAfterReplay':
        return self

    def __next__(self):
        if self.skip == 0 and self.state is not None:
            set_random_state(self.state)
            self.state = None
        self.skip -= 1
        return next(self.iterator)


def _sampler(loader: DataLoader):
    sampler = getattr(loader, 'sampler', None)
    if not hasattr(sampler, 'seed') and getattr(loader, 'batch_sampler', None) is not None:
        sampler = getattr(loader.batch_sampler, 'sampler', sampler)
    return sampler


@HOOKS.register_module()
class RandomStateHook(Hook):
    """Saves and restores the generator states; seeds data workers per epoch.

    Args:
        seed_workers: give the train loader a base-seed generator seeded by
            (seed, epoch, rank) and, where it has mmengine's default
            ``worker_init_fn`` (fixed seeds), :func:`seed_worker` instead.
    """

    priority = 'HIGHEST'  # restore before any other hook draws a number

    def __init__(self, seed_workers: bool = True) -> None:
        self.seed_workers = seed_workers
        self._generator = torch.Generator()
        self._loaded: Optional[Dict[str, Any]] = None  # read from a checkpoint
        self._resume_state: Optional[Dict[str, Any]] = None  # this rank's, to restore
        self._held: Optional[Dict[str, Any]] = None  # this rank's, across validation
        self._gathered: Optional[tuple] = None  # (iter, states of all ranks)
        self._training = False

    # ---------------------------------------------------------------- save
    def _gather(self, runner, state: Dict[str, Any]) -> None:
        """Runner.save_checkpoint runs on rank 0 only: collect the states of
        all ranks beforehand, at points every rank passes."""
        if get_world_size() > 1:
            self._gathered = (runner.iter, all_gather_object(state))

    def after_train_iter(self, runner, batch_idx: int, data_batch=None, outputs=None) -> None:
        if get_world_size() > 1 and checkpoint_due(runner):
            self._gather(runner, get_random_state())

    def after_train_epoch(self, runner) -> None:
        self._gather(runner, get_random_state())

    def before_val(self, runner) -> None:
        if not self._training:
            return
        self._held = get_random_state()
        self._gather(runner, self._held)

    def after_val(self, runner) -> None:
        if self._held is not None:
            set_random_state(self._held)  # validation leaves training's draws alone
            self._held = None

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        if get_world_size() == 1:
            states: List[Dict[str, Any]] = [
                self._held if self._held is not None else get_random_state()]
        elif self._gathered is not None and self._gathered[0] == runner.iter:
            states = self._gathered[1]
        else:
            runner.logger.warning(
                'RandomStateHook: no random states of all ranks at iteration '
                f'{runner.iter}; this checkpoint resumes reproducibly but not bit-exactly')
            return
        sampler = _sampler(runner.train_dataloader)
        checkpoint[RANDOM_STATES_KEY] = dict(
            states=states, sampler_seed=getattr(sampler, 'seed', None))

    # ------------------------------------------------------------- restore
    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        self._loaded = checkpoint.get(RANDOM_STATES_KEY)

    def after_train(self, runner) -> None:
        self._training = False

    def before_train(self, runner) -> None:
        self._training = True
        loaded, self._loaded = self._loaded, None
        loader = runner.train_loop.dataloader
        if self.seed_workers:
            self._install_seed_worker(runner, loader)
        if runner.iter == 0:  # a fresh run, or fine-tuning from load_from
            return
        if loaded is None:
            runner.logger.warning(
                'RandomStateHook: the checkpoint holds no random states (saved '
                'without this hook); the resumed run is not bit-exact')
            return
        states = loaded['states']
        if len(states) != get_world_size():
            runner.logger.warning(
                f'RandomStateHook: the checkpoint holds the random states of '
                f'{len(states)} rank(s), this run has {get_world_size()}; they '
                'are not restored and the resumed run is not bit-exact')
            return
        sampler = _sampler(loader)
        if loaded.get('sampler_seed') is not None and hasattr(sampler, 'seed'):
            # with randomness.seed=None the sampler was built with a new seed
            sampler.seed = loaded['sampler_seed']
        self._resume_state = states[get_rank()]
        iter_loop = hasattr(runner.train_loop, 'dataloader_iterator')
        if not iter_loop and loader.num_workers > 0 and loader.persistent_workers:
            runner.logger.warning(
                'RandomStateHook: persistent data workers carry their random '
                'state across epochs, which a resumed run cannot rebuild; set '
                'train_dataloader.persistent_workers=False for an exact resume')

    def before_train_epoch(self, runner) -> None:
        loop = runner.train_loop
        if self.seed_workers:
            self._seed_loader(runner)
        state, self._resume_state = self._resume_state, None
        if state is None:
            return
        if hasattr(loop, 'dataloader_iterator'):
            # IterBasedTrainLoop replays runner.iter batches after this hook
            loop.dataloader_iterator = _RestoreAfterReplay(
                loop.dataloader_iterator, runner.iter, state)
        else:
            set_random_state(state)

    def before_train_iter(self, runner, batch_idx: int, data_batch=None) -> None:
        loop = runner.train_loop
        wrapper = getattr(loop, 'dataloader_iterator', None)
        if isinstance(wrapper, _RestoreAfterReplay) and wrapper.state is None:
            loop.dataloader_iterator = wrapper.iterator

    # ------------------------------------------------------- data workers
    @staticmethod
    def _install_seed_worker(runner, loader: DataLoader) -> None:
        init_fn = loader.worker_init_fn
        if isinstance(init_fn, functools.partial) and init_fn.func is mmengine_worker_init_fn:
            loader.worker_init_fn = seed_worker
            if loader.num_workers > 0:
                runner.logger.info(
                    'RandomStateHook: train data workers seeded per epoch '
                    "(worker_init_fn='seed_worker' instead of mmengine's fixed seeds)")

    def _seed_loader(self, runner) -> None:
        loop = runner.train_loop
        loader = loop.dataloader
        if not isinstance(loader, DataLoader):
            return
        self._generator.manual_seed(epoch_seed(runner.seed, runner.epoch, get_rank()))
        loader.generator = self._generator
        iterator = getattr(loop, 'dataloader_iterator', None)
        infinite = infinite_dataloader_iterator()
        if loader.num_workers > 0 and isinstance(iterator, infinite):
            # IterBasedTrainLoop started its workers when it was built, before
            # the generator was set: start them again from it (persistent
            # workers are kept by the loader unless its iterator is dropped)
            if loader.persistent_workers:
                loader._iterator = None
            loop.dataloader_iterator = infinite(loader)
