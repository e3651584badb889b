"""What travels between pipeline stages: point-to-point messages downstream.

A stage sends the next stage, for each batch, its detached output
activation and the batch's preprocessed data (inputs and data samples,
pickled): ``isend``, overlapped with the next tick's compute, waited for
before the next send. Nothing travels upstream.

Messages travel in a process group of their own: on the default group,
gloo's collectives number their messages with tags that user tags would
collide with (a broadcast's root does not wait, so a stage can be sending
while the next still receives a broadcast).
"""
import pickle
from typing import List, Optional, Tuple

import torch
import torch.distributed as torch_dist

_TAG_HEADER, _TAG_PAYLOAD, _TAG_ACTIVATION = 17, 18, 19


def to_cpu(obj):
    """Preprocessed data on the CPU (pickled in messages)."""
    if isinstance(obj, torch.Tensor):
        return obj.detach().cpu()
    if isinstance(obj, dict):
        return {k: to_cpu(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(to_cpu(v) for v in obj)
    if hasattr(obj, 'cpu') and callable(obj.cpu):
        return obj.cpu()
    return obj


def to_device(obj, device):
    if isinstance(obj, torch.Tensor):
        return obj.to(device)
    if isinstance(obj, dict):
        return {k: to_device(v, device) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(to_device(v, device) for v in obj)
    if hasattr(obj, 'to') and callable(obj.to):
        return obj.to(device)
    return obj


class StageTransport:
    """Sends to the next stage's replica and receives from the previous one.

    Args:
        prev, next: global ranks of the neighbours (None at the ends).
        group: the process group of the messages (every rank, created by all
            ranks in the same order).
        comm_device: where messages are staged (CUDA for nccl, else CPU).
    """

    def __init__(self, prev: Optional[int], next: Optional[int], group,
                 comm_device: torch.device) -> None:
        self.prev, self.next = prev, next
        self.group = group
        self.comm_device = comm_device
        self._sends: List = []  # (work, buffer) pairs kept alive until waited for

    def wait(self) -> None:
        """Wait for the sends in flight."""
        for work, _ in self._sends:
            work.wait()
        self._sends = []

    def send(self, data: dict, act: torch.Tensor) -> None:
        self.wait()
        act = act.detach().contiguous().to(self.comm_device)
        meta = dict(data=to_cpu(data), shape=tuple(act.shape), dtype=act.dtype)
        payload = torch.frombuffer(bytearray(pickle.dumps(meta)),
                                   dtype=torch.uint8).to(self.comm_device)
        header = torch.tensor([payload.numel()], dtype=torch.int64, device=self.comm_device)
        for tensor, tag in ((header, _TAG_HEADER), (payload, _TAG_PAYLOAD),
                            (act, _TAG_ACTIVATION)):
            self._sends.append((torch_dist.isend(tensor, self.next, group=self.group,
                                                 tag=tag), tensor))

    def receive(self, device: torch.device) -> Tuple[dict, torch.Tensor]:
        """The next batch's preprocessed data and activation, on ``device``."""
        header = torch.empty(1, dtype=torch.int64, device=self.comm_device)
        torch_dist.recv(header, self.prev, group=self.group, tag=_TAG_HEADER)
        payload = torch.empty(int(header.item()), dtype=torch.uint8, device=self.comm_device)
        torch_dist.recv(payload, self.prev, group=self.group, tag=_TAG_PAYLOAD)
        meta = pickle.loads(payload.cpu().numpy().tobytes())
        act = torch.empty(meta['shape'], dtype=meta['dtype'], device=self.comm_device)
        torch_dist.recv(act, self.prev, group=self.group, tag=_TAG_ACTIVATION)
        return to_device(meta['data'], device), act.to(device)
