"""Which pipeline stage runs which local modules, and owns which tensors.

``assign_stages`` cuts the K local modules into S stages of consecutive
modules; ``check_stage_windows`` and ``check_stage_leaps`` refuse a plan
whose losses or MLAAN copies would need something from another stage;
``tensor_owners`` says which stage owns each parameter and buffer of the
model and of the heads (the heads' from the plan, by the module of each).
"""
from typing import Dict, List, Sequence, Tuple

import torch.nn as nn

from mmlocal.local.config import LocalConfigError, PipelineConfig
from mmlocal.local.plan import LocalPlan


def module_blocks(plan: LocalPlan, blocks: Sequence[str]) -> List[int]:
    """Number of backbone blocks in each local module."""
    ends = [blocks.index(b) for b in plan.boundaries] + [len(blocks) - 1]
    return [e - (ends[m - 1] if m else -1) for m, e in enumerate(ends)]


def assign_stages(plan: LocalPlan, blocks: Sequence[str],
                  cfg: PipelineConfig) -> List[Tuple[int, int]]:
    """(first, last) module of each stage: explicit ``modules_per_stage``,
    equal module counts, or equal block counts (the default: blocks of one
    backbone cost about the same, e.g. ResNet-110's or ViT's)."""
    k, s = plan.num_modules, cfg.stages
    if s > k:
        raise LocalConfigError(f'local.pipeline.stages={s} exceeds the {k} local modules: '
                               f'use at most {k} stages or more modules')
    if cfg.modules_per_stage is not None:
        counts = list(cfg.modules_per_stage)
        if sum(counts) != k:
            raise LocalConfigError(f'local.pipeline.modules_per_stage={tuple(counts)} sums to '
                                   f'{sum(counts)}, but the split has {k} local modules')
    else:
        weights = [1] * k if cfg.balance == 'modules' else module_blocks(plan, blocks)
        total, counts, start = sum(weights), [], 0
        for i in range(s):
            if i == s - 1:
                counts.append(k - start)
                break
            target, acc, n = total * (i + 1) / s, sum(weights[:start]), 0
            # take modules while it brings the cumulative cost closer to the target
            while start + n < k - (s - i - 1) and (
                    n == 0 or abs(acc + weights[start + n] - target) <= abs(acc - target)):
                acc += weights[start + n]
                n += 1
            counts.append(n)
            start += n
    ranges, start = [], 0
    for n in counts:
        ranges.append((start, start + n - 1))
        start += n
    return ranges


def check_stage_windows(plan: LocalPlan, ranges: Sequence[Tuple[int, int]]) -> None:
    """A loss whose gradient crosses a stage boundary needs a gradient sent
    upstream: refused, with the options named."""
    stage_of = {m: s for s, (a, b) in enumerate(ranges) for m in range(a, b + 1)}
    fix = ('put the stage boundaries where no window crosses them '
           '(local.pipeline.modules_per_stage; HiLo cascade windows of k >= 2 slide over every '
           'module boundary, so for them this means local.hilo.cascade=1), or train this '
           'config without local.pipeline (data parallel)')
    layout = ', '.join(f'stage {s}: m{a + 1}..m{b + 1}' for s, (a, b) in enumerate(ranges))
    for hp in plan.heads:
        if stage_of[max(hp.reach, 0)] != stage_of[hp.module]:
            raise LocalConfigError(
                f'local head {hp.key} trains modules m{hp.reach + 1}..m{hp.module + 1}, which '
                f'cross a pipeline stage boundary ({layout}); a pipeline sends no gradient '
                f'upstream: {fix}')
    last = plan.num_modules - 1
    if plan.task_weight_below > 0 and stage_of[max(plan.task_reach, 0)] != stage_of[last]:
        raise LocalConfigError(
            f'the task loss trains modules m{plan.task_reach + 1}..m{last + 1}, which cross '
            f'a pipeline stage boundary ({layout}): {fix}')


def module_of_block(plan: LocalPlan, blocks: Sequence[str]) -> List[int]:
    ends = [blocks.index(b) for b in plan.boundaries]
    return [sum(1 for e in ends if e < i) for i in range(len(blocks))]


def tensor_owners(model: nn.Module, learner: nn.Module, plan: LocalPlan,
                  blocks: Sequence[str], stage_of_module: Sequence[int]
                  ) -> Tuple[Dict[str, int], Dict[str, int]]:
    """The stage owning each model and head tensor (parameters and buffers).

    A tensor inside a block belongs to its module's stage; one outside every
    block to the stage of the last block registered before it (so a stem,
    class token or position embedding goes to stage 0, a final norm, neck or
    task head to the last stage); a head's to the stage of its module in the
    plan. Checked against the parameters that receive gradients in the tests.
    """
    order = {name: i for i, (name, _) in enumerate(model.named_modules())}
    block_stage = [stage_of_module[m] for m in module_of_block(plan, blocks)]
    block_pos = [(order[b], b, s) for b, s in zip(blocks, block_stage)]

    def stage_of_path(path: str) -> int:
        for _, b, s in block_pos:
            if path == b or path.startswith(b + '.'):
                return s
        i = order.get(path, -1)
        before = [s for o, _, s in block_pos if o < i]
        return before[-1] if before else 0

    model_owner = {}
    for name, _ in list(model.named_parameters()) + list(model.named_buffers()):
        model_owner[name] = stage_of_path(name.rpartition('.')[0])
    by_tensor = {}  # a head's tensors -> the stage of the module the plan gives it
    for hp in plan.heads:
        head = learner.head(hp)
        for t in list(head.parameters()) + list(head.buffers()):
            by_tensor[id(t)] = stage_of_module[hp.module]
    head_owner = {}
    for name, t in list(learner.named_parameters()) + list(learner.named_buffers()):
        if id(t) not in by_tensor:
            raise RuntimeError(f'local learner tensor {name} belongs to no head of the plan: '
                               'a pipeline cannot tell which stage owns it')
        head_owner[name] = by_tensor[id(t)]
    return model_owner, head_owner


def check_stage_leaps(plan: LocalPlan, blocks: Sequence[str],
                      stage_of_module: Sequence[int]) -> None:
    """MLAAN copies of later blocks must live on their head's stage."""
    module_of = module_of_block(plan, blocks)
    for hp in plan.heads:
        for path in hp.leap:
            if stage_of_module[module_of[blocks.index(path)]] != stage_of_module[hp.module]:
                raise LocalConfigError(
                    f'MLAAN head {hp.key} copies block {path} of another pipeline stage; '
                    'its EMA copy would follow a block this stage does not train: align '
                    'the stages (local.pipeline.modules_per_stage) or drop local.mlaan')
