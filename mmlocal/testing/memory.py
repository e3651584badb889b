"""The real peak memory of a local training step, for tests of the peak
analysis (CPU: the allocator events the profiler reports)."""
from typing import List, Optional, Tuple

from mmlocal.utils.memory import PeakMemoryTracker
from .local import build_local


def step_peak(model, batch: dict, local: dict,
              optimizer: Optional[dict] = None) -> Tuple[int, List[str]]:
    """Peak bytes of one real local ``train_step`` (the second of two, so the
    optimizer state exists), with everything alive at its start (parameters,
    heads, optimizer state); and the learner's boundaries. The learner is
    removed afterwards."""
    wrapper = build_local(model, local, optimizer=optimizer)
    model.train_step(batch, wrapper)
    with PeakMemoryTracker('cpu', baseline=(model, wrapper)) as tracker:
        model.train_step(batch, wrapper)
    learner = wrapper.learner
    learner.remove()
    return tracker.stats.peak_bytes, learner.boundaries
