"""PeakMemoryTracker against allocations of known size.

Sizes are multiples of 1 MiB so that the c10 allocator's exact byte counts
can be compared with ``==``: the CPU tracker reads every allocation and free
the allocator reports, so there is no tolerance to allow for.
"""
import pytest
import torch
import torch.nn as nn

from mmlocal.utils.memory import MB, PeakMemoryTracker, tensor_bytes


def alloc(mb: int) -> torch.Tensor:
    return torch.empty(mb * MB, dtype=torch.uint8)


def test_free_then_bigger_allocation():
    with PeakMemoryTracker('cpu') as t:
        a = alloc(8)
        del a
        b = alloc(16)
        del b
    assert t.peak_increase_bytes == 16 * MB
    assert t.stats.end_increase_bytes == 0
    assert t.stats.baseline_source == 'tracked'
    assert t.peak_bytes == 16 * MB  # nothing known live at the start


def test_freed_then_reallocated_does_not_accumulate():
    with PeakMemoryTracker('cpu') as t:
        for _ in range(5):
            a = alloc(8)
            del a
    assert t.peak_increase_bytes == 8 * MB


def test_overlapping_allocations_add_up():
    with PeakMemoryTracker('cpu') as t:
        a = alloc(8)
        b = alloc(4)
        del a
        c = alloc(2)  # live: b + c = 6 < 12
        del b, c
    assert t.peak_increase_bytes == 12 * MB


def test_nested_calls():

    def inner():
        tmp = alloc(8)  # freed on return
        tmp.zero_()

    def outer():
        keep = alloc(4)
        inner()  # peak here: 4 + 8
        more = alloc(2)  # 4 + 2
        return keep, more

    with PeakMemoryTracker('cpu') as t:
        kept = outer()
    assert t.peak_increase_bytes == 12 * MB
    assert t.stats.end_increase_bytes == 6 * MB
    del kept


def test_tensor_kept_alive_only_by_autograd_graph():
    n = MB  # float32 elements: 4 MiB per tensor
    x = torch.ones(n, requires_grad=True)  # allocated before: not counted
    with PeakMemoryTracker('cpu') as t:
        a = x.sin()  # 4 MiB, saved by cos below
        b = a.cos()  # 4 MiB
        del a  # still alive: b's graph holds it for backward
        c = torch.empty(4 * n)  # 16 MiB -> peak 4 + 4 + 16
        del c
        b.sum().backward()  # frees the graph, and with it `a`
        del b
    assert t.peak_increase_bytes >= 24 * MB
    # backward allocates only short-lived gradients of x's size; the peak is
    # the forward one above, not one where `a` was already freed (20 MiB)
    assert t.peak_increase_bytes == 24 * MB
    # x.grad (4 MiB) is what remains
    assert t.stats.end_increase_bytes == 4 * MB


def test_saved_tensors_of_a_real_network_are_live():
    """After forward, live bytes == the storages autograd saved (+ the loss)."""
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
        nn.Conv2d(8, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 10))
    x, y = torch.randn(8, 3, 32, 32), torch.randint(0, 10, (8, ))
    saved = {}

    def pack(t):
        saved[t.untyped_storage().data_ptr()] = t.untyped_storage().nbytes()
        return t

    with PeakMemoryTracker('cpu') as t:
        with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
            loss = nn.functional.cross_entropy(model(x), y)
    outside = {
        v.untyped_storage().data_ptr()
        for v in [x, y, *model.parameters(), *model.buffers()]
    }
    expected = sum(n for p, n in saved.items() if p not in outside)
    expected += loss.untyped_storage().nbytes()
    assert t.stats.end_increase_bytes == expected
    assert t.peak_increase_bytes >= expected


def test_reset_peak_starts_a_new_window():
    with PeakMemoryTracker('cpu') as t:
        warm = alloc(32)
        del warm
        state = alloc(4)  # e.g. optimizer state created by the warm-up
        t.reset_peak()
        a = alloc(8)
        del a
    assert t.peak_increase_bytes == 8 * MB
    assert t.baseline_bytes == 4 * MB  # tracked: live at the window start
    assert t.peak_bytes == 12 * MB
    del state


def test_baseline_from_objects_and_int():
    model = nn.Linear(256, 1024)  # (256 * 1024 + 1024) * 4 bytes
    params = (256 * 1024 + 1024) * 4
    assert tensor_bytes(model) == params
    model(torch.randn(2, 256)).sum().backward()
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    opt.step()  # momentum buffers: one more copy of the parameters
    assert tensor_bytes((model, opt)) == 3 * params  # params + grads + state
    assert tensor_bytes([model, model.weight]) == 2 * params  # no double count

    with PeakMemoryTracker('cpu', baseline=(model, opt)) as t:
        a = alloc(1)
        del a
    assert t.baseline_bytes == 3 * params
    assert t.stats.baseline_source == 'objects'
    assert t.peak_bytes == 3 * params + MB

    with PeakMemoryTracker('cpu', baseline=123) as t:
        pass
    assert t.peak_bytes == 123 and t.peak_increase_bytes == 0


def test_preexisting_memory_freed_inside_is_not_subtracted():
    """Documented limit: the allocator does not know sizes from before."""
    old = alloc(8)
    with PeakMemoryTracker('cpu') as t:
        del old  # unknown to the tracker
        a = alloc(8)
        del a
    assert t.peak_increase_bytes == 8 * MB  # true value 0: over-estimate


def test_errors():
    t = PeakMemoryTracker('cpu')
    with pytest.raises(RuntimeError, match='after the `with` block'):
        t.stats
    with pytest.raises(RuntimeError, match='inside the'):
        t.reset_peak()
    with pytest.raises(ValueError, match='cpu and cuda'):
        PeakMemoryTracker('meta')
    with PeakMemoryTracker('cpu'):
        with pytest.raises(RuntimeError, match='another'):
            with PeakMemoryTracker('cpu'):
                pass


@pytest.mark.skipif(not torch.cuda.is_available(), reason='needs a GPU')
def test_cuda_known_sizes():
    dev = torch.device('cuda')
    keep = torch.empty(4 * MB, dtype=torch.uint8, device=dev)
    with PeakMemoryTracker(dev) as t:
        a = torch.empty(8 * MB, dtype=torch.uint8, device=dev)
        del a
        b = torch.empty(16 * MB, dtype=torch.uint8, device=dev)
        t.reset_peak()  # b is now part of the baseline
        c = torch.empty(2 * MB, dtype=torch.uint8, device=dev)
        del b, c
    assert t.peak_increase_bytes == 2 * MB
    assert t.stats.baseline_source == 'allocator'
    assert t.baseline_bytes >= 20 * MB
    with PeakMemoryTracker(dev, baseline=keep) as t:
        a = torch.empty(8 * MB, dtype=torch.uint8, device=dev)
        del a
    assert t.baseline_bytes == 4 * MB and t.peak_bytes == 12 * MB


def test_cuda_unavailable_message():
    if torch.cuda.is_available():
        pytest.skip('a GPU is present')
    with pytest.raises(RuntimeError, match='device="cpu"'):
        PeakMemoryTracker('cuda')
