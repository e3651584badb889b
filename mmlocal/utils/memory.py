"""Peak tensor memory of a block of code, on CPU and on CUDA.

Local learning is about memory, so the benchmarks need the peak of *live
allocated tensor bytes* during a training step, measured the same way on both
devices:

* **CUDA**: the caching allocator's own counters
  (``torch.cuda.reset_peak_memory_stats`` + ``torch.cuda.max_memory_allocated``).
  Baseline = ``torch.cuda.memory_allocated()`` at the start of the window.
* **CPU**: PyTorch keeps no CPU allocator statistics, and process RSS is the
  wrong quantity (it includes the Python heap, libraries, freed pages glibc
  has not returned, and never goes down). We read the allocation and free
  events that PyTorch's default CPU allocator reports to the profiler when
  ``profile_memory=True``: every ``c10`` CPU allocation made in the window
  (op outputs, tensors saved for backward, gradients, optimizer state, the
  temporary buffers inside kernels) and its free. The running sum in time
  order gives the live bytes; its maximum over the window minus its value at
  the window start is ``peak_increase_bytes`` -- exact for these allocations.

What the CPU count cannot see, by construction of the allocator's reporter:

* memory allocated *before* tracking started and freed inside the window (the
  allocator does not know its size then, and warns "Memory block of unknown
  size"): it is not subtracted, so the increase can only be over-estimated.
  A training step frees nothing it did not allocate itself (``zero_grad``
  frees the gradients of the same step), and running a warm-up iteration
  inside the tracker followed by :meth:`PeakMemoryTracker.reset_peak` removes
  the case entirely;
* memory not obtained from the c10 CPU allocator (numpy arrays, Python
  objects, oneDNN's private scratchpads).

The baseline (bytes already live when the window starts) is not knowable from
the CPU allocator, so it is taken from the objects you name (``baseline=``
model, optimizer wrapper, ...): the unique storages of their parameters,
buffers, gradients and optimizer state, see :func:`tensor_bytes`. On CUDA the
allocator's figure is used unless a baseline is given.
"""
from dataclasses import asdict, dataclass
from typing import Any, Dict, Optional, Set, Union

import torch
import torch.nn as nn

__all__ = ['MemoryStats', 'PeakMemoryTracker', 'tensor_bytes']

_RESET_MARKER = 'mmlocal::PeakMemoryTracker.reset_peak'
MB = 1024 * 1024


@dataclass
class MemoryStats:
    """Result of one tracked window (all sizes in bytes)."""

    device: str
    baseline_bytes: int  # live at the window start (see ``baseline_source``)
    peak_increase_bytes: int  # max live bytes in the window - live at start
    peak_bytes: int  # baseline_bytes + peak_increase_bytes
    baseline_source: str  # 'allocator' | 'objects' | 'given' | 'tracked'
    end_increase_bytes: int = 0  # live at the window end - live at start
    num_events: int = 0  # CPU: allocation/free events read; CUDA: 0

    def to_dict(self) -> Dict[str, Any]:
        return asdict(self)

    def __str__(self) -> str:
        return (f'peak {self.peak_bytes / MB:.2f} MB = baseline '
                f'{self.baseline_bytes / MB:.2f} MB ({self.baseline_source}) + '
                f'increase {self.peak_increase_bytes / MB:.2f} MB on {self.device}')


def tensor_bytes(objs: Any, device: Union[str, torch.device, None] = None) -> int:
    """Bytes of the unique tensor storages held by ``objs``.

    Walks tensors, ``nn.Module`` (parameters, their ``.grad``, buffers),
    ``torch.optim.Optimizer`` (state), mmengine optimizer wrappers (their
    ``optimizer``/``optim_wrappers``) and lists/tuples/dicts of these. Storages
    shared by several tensors (views, tied weights) count once. With
    ``device``, only storages on that device type count.
    """
    dev_type = None if device is None else torch.device(device).type
    seen: Set[int] = set()
    visited: Set[int] = set()
    total = 0

    def add(t: torch.Tensor) -> None:
        nonlocal total
        if dev_type is not None and t.device.type != dev_type:
            return
        if t.is_sparse or t.device.type == 'meta':
            return
        storage = t.untyped_storage()
        key = storage.data_ptr()
        if key == 0 or key in seen:
            return
        seen.add(key)
        total += storage.nbytes()

    def walk(obj: Any) -> None:
        if obj is None or isinstance(obj, (str, bytes, int, float, bool)):
            return
        if isinstance(obj, torch.Tensor):
            add(obj)
            if obj.grad is not None:
                add(obj.grad)
            return
        if id(obj) in visited:
            return
        visited.add(id(obj))
        if isinstance(obj, nn.Module):
            for p in obj.parameters():
                walk(p)
            for b in obj.buffers():
                add(b)
        elif isinstance(obj, torch.optim.Optimizer):
            for group in obj.param_groups:
                walk(group['params'])
            for state in obj.state.values():
                walk(state)
        elif isinstance(obj, dict):
            for v in obj.values():
                walk(v)
        elif isinstance(obj, (list, tuple, set)):
            for v in obj:
                walk(v)
        else:  # mmengine OptimWrapper / OptimWrapperDict / AmpOptimWrapper
            for attr in ('optimizer', 'optim_wrappers', 'loss_scaler'):
                if hasattr(obj, attr):
                    walk(getattr(obj, attr))

    walk(objs)
    return total


class PeakMemoryTracker:
    """Context manager measuring the peak of live allocated tensor memory.

    Example::

        with PeakMemoryTracker('cpu', baseline=(model, optim_wrapper)) as t:
            model.train_step(batch, optim_wrapper)   # warm-up: state created
            t.reset_peak()                           # window starts here
            model.train_step(batch, optim_wrapper)
        print(t.stats.peak_bytes, t.stats.peak_increase_bytes)

    Args:
        device: 'cpu', 'cuda' or 'cuda:N'.
        baseline: bytes live at the window start that ``peak_bytes`` adds to
            the measured increase. ``None``: CUDA reads the allocator; CPU
            counts only what was allocated inside the tracker before the
            window (0 without :meth:`reset_peak`). An ``int``: used as is.
            Anything else (model, optimizer, optim wrapper, tensors, or a
            tuple of them) is walked with :func:`tensor_bytes` at the window
            start.

    The CPU path runs the PyTorch profiler (CPU activity, memory events) over
    the block, so it cannot be nested in another profiler and slows each op a
    little: time steps outside the tracker.
    """

    def __init__(self,
                 device: Union[str, torch.device] = 'cpu',
                 baseline: Any = None) -> None:
        self.device = torch.device(device)
        if self.device.type not in ('cpu', 'cuda'):
            raise ValueError(f'PeakMemoryTracker supports cpu and cuda devices, '
                             f'got {self.device}.')
        if self.device.type == 'cuda' and not torch.cuda.is_available():
            raise RuntimeError('PeakMemoryTracker(device="cuda") needs a CUDA '
                               'build of torch with a visible GPU; use '
                               'device="cpu".')
        self.baseline = baseline
        self._stats: Optional[MemoryStats] = None
        self._prof = None
        self._active = False
        self._baseline_bytes = 0
        self._baseline_source = 'tracked'
        self._cuda_start = 0

    # ------------------------------------------------------------------ API
    @property
    def stats(self) -> MemoryStats:
        if self._stats is None:
            raise RuntimeError('PeakMemoryTracker.stats is available after the '
                               '`with` block has exited.')
        return self._stats

    @property
    def peak_bytes(self) -> int:
        return self.stats.peak_bytes

    @property
    def peak_increase_bytes(self) -> int:
        return self.stats.peak_increase_bytes

    @property
    def baseline_bytes(self) -> int:
        return self.stats.baseline_bytes

    def __enter__(self) -> 'PeakMemoryTracker':
        if self._active:
            raise RuntimeError('PeakMemoryTracker is not re-entrant.')
        self._stats = None
        if self.device.type == 'cuda':
            self._start_window_cuda()
        else:
            self._start_cpu()
        self._active = True
        return self

    def __exit__(self, *exc) -> None:
        self._active = False
        if self.device.type == 'cuda':
            self._stats = self._finish_cuda()
        else:
            self._stats = self._finish_cpu()

    def reset_peak(self) -> None:
        """Start a new measuring window here (e.g. after warm-up steps).

        The baseline is re-evaluated at this point, so the state created by
        the warm-up (optimizer moments) counts in the baseline, not in the
        increase.
        """
        if not self._active:
            raise RuntimeError('reset_peak() must be called inside the '
                               '`with PeakMemoryTracker(...)` block.')
        if self.device.type == 'cuda':
            self._start_window_cuda()
        else:
            self._evaluate_baseline()
            with torch.profiler.record_function(_RESET_MARKER):
                pass

    def _evaluate_baseline(self) -> None:
        """Baseline of the window starting now, from ``self.baseline``."""
        if self.baseline is None:
            self._baseline_bytes, self._baseline_source = 0, 'tracked'
        elif isinstance(self.baseline, int):
            self._baseline_bytes, self._baseline_source = self.baseline, 'given'
        else:
            self._baseline_bytes = tensor_bytes(self.baseline, self.device)
            self._baseline_source = 'objects'

    # ----------------------------------------------------------------- CUDA
    def _start_window_cuda(self) -> None:
        torch.cuda.synchronize(self.device)
        self._cuda_start = torch.cuda.memory_allocated(self.device)
        torch.cuda.reset_peak_memory_stats(self.device)
        if self.baseline is None:
            self._baseline_bytes, self._baseline_source = (self._cuda_start,
                                                           'allocator')
        else:
            self._evaluate_baseline()

    def _finish_cuda(self) -> MemoryStats:
        torch.cuda.synchronize(self.device)
        peak = torch.cuda.max_memory_allocated(self.device)
        end = torch.cuda.memory_allocated(self.device)
        increase = max(0, peak - self._cuda_start)
        return MemoryStats(
            device=str(self.device),
            baseline_bytes=self._baseline_bytes,
            peak_increase_bytes=increase,
            peak_bytes=self._baseline_bytes + increase,
            baseline_source=self._baseline_source,
            end_increase_bytes=end - self._cuda_start)

    # ------------------------------------------------------------------ CPU
    def _start_cpu(self) -> None:
        if torch.autograd.profiler._is_profiler_enabled:
            raise RuntimeError(
                'PeakMemoryTracker(device="cpu") reads the allocation events '
                'of the PyTorch profiler and cannot run inside another '
                'profiler (or tracker): close the outer one first.')
        self._evaluate_baseline()
        self._prof = torch.profiler.profile(
            activities=[torch.profiler.ProfilerActivity.CPU],
            profile_memory=True)
        self._prof.__enter__()

    def _finish_cpu(self) -> MemoryStats:
        prof, self._prof = self._prof, None
        prof.__exit__(None, None, None)
        # The raw events: the op tables (``prof.events()``) are built lazily
        # and never needed here.
        results = prof.profiler.kineto_results
        marker_ns = None
        mem_events = []
        for ev in results.events():
            name = ev.name()
            if name == '[memory]':
                if ev.device_type() == torch._C._autograd.DeviceType.CPU:
                    mem_events.append((ev.start_ns(), ev.nbytes()))
            elif name == _RESET_MARKER:
                start = ev.start_ns()
                marker_ns = start if marker_ns is None else max(marker_ns, start)
        mem_events.sort(key=lambda e: e[0])  # stable: equal times keep order
        live = 0
        at_start = 0
        peak = 0
        in_window = marker_ns is None
        for t, nbytes in mem_events:
            if not in_window and t >= marker_ns:
                in_window = True
                at_start = peak = live
            live += nbytes
            if in_window:
                peak = max(peak, live)
        if not in_window:  # marker after the last event
            at_start = peak = live
        increase = max(0, peak - at_start)
        if self.baseline is None:
            # Only what was allocated inside the tracker is known.
            self._baseline_bytes = max(0, at_start)
        return MemoryStats(
            device='cpu',
            baseline_bytes=self._baseline_bytes,
            peak_increase_bytes=increase,
            peak_bytes=self._baseline_bytes + increase,
            baseline_source=self._baseline_source,
            end_increase_bytes=live - at_start,
            num_events=len(mem_events))
