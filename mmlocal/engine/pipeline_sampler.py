"""``PipelineSampler``: the data of a pipelined run, shared among replicas.

In a pipeline of S stages over W processes, the batches enter at stage 0 and
travel downstream, so the dataset is split among the W/S data-parallel
replicas (replica i = rank % (W/S)), not among all W processes. Every rank
iterates the same number of batches (a stage > 0 ignores its own and takes
its input from upstream), with the seed and shuffling of ``DefaultSampler``:
with one replica per stage the order is exactly one process's.
"""
import math

from mmengine.dataset import DefaultSampler
from mmengine.dist import get_rank, get_world_size
from mmengine.registry import DATA_SAMPLERS


@DATA_SAMPLERS.register_module()
class PipelineSampler(DefaultSampler):
    """``DefaultSampler`` over the W/S replicas of a stage.

    Args:
        stages: S, as ``optim_wrapper.local.pipeline.stages``.
        **kwargs: ``dataset``, ``shuffle``, ``seed``, ``round_up`` of
            ``DefaultSampler``.
    """

    def __init__(self, dataset, stages: int, **kwargs) -> None:
        super().__init__(dataset, **kwargs)
        world = get_world_size()
        if stages < 1 or world % stages:
            raise ValueError(f'PipelineSampler: stages={stages} must divide the number of '
                             f'processes ({world})')
        self.stages = stages
        self.world_size = world // stages
        self.rank = get_rank() % self.world_size
        if self.round_up:
            self.num_samples = math.ceil(len(self.dataset) / self.world_size)
            self.total_size = self.num_samples * self.world_size
        else:
            self.num_samples = math.ceil((len(self.dataset) - self.rank) / self.world_size)
            self.total_size = len(self.dataset)
