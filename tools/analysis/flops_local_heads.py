"""FLOPs of one training step, split into the local heads and the rest.

The heads' share (their forward, PFF's passes and the backward of their
losses down to the feature they read) is counted by a ``FlopCounterMode``
around each head of the plan, run on the batch's features as the step runs
it (``mmlocal.analysis.flops.local_head_flops``); the rest (backbone forward, the router's VJPs, the
task head) is the step's total minus it. Shows how much of a method's work
no routing of the backbone's gradients can remove.

Example::

    python tools/analysis/flops_local_heads.py configs/resnet32_cifar10_dgl_hpff_k16.py \\
        --cfg-options train_dataloader.dataset.data_root=data/cifar10_mini \\
        optim_wrapper.local.recompute=False
"""
import argparse

import mmlocal  # noqa: F401  (compat patches, registrations) before mm*
import torch
from mmengine.config import DictAction
from torch.utils.flop_counter import FlopCounterMode

from mmlocal.analysis.flops import local_head_flops
from mmlocal.apis import build_model_and_optim_wrapper, load_config, real_batch


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('config')
    parser.add_argument('--batch-size', type=int, default=128)
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--cfg-options', nargs='+', action=DictAction)
    args = parser.parse_args()
    torch.set_num_threads(1)
    cfg = load_config(args.config, args.cfg_options)
    batch = real_batch(cfg, args.batch_size, args.seed)
    torch.manual_seed(args.seed)
    model, optim_wrapper = build_model_and_optim_wrapper(cfg, torch.device('cpu'))
    model.train_step(batch, optim_wrapper)  # as the benchmark: the counted step is not the first
    with FlopCounterMode(display=False) as counter:
        model.train_step(batch, optim_wrapper)
    total = counter.get_total_flops()

    heads = sum(f for _, f in local_head_flops(optim_wrapper.learner, model, batch))
    print(f'{args.config}: {total / 1e9:.2f} GFLOPs per step; local heads {heads / 1e9:.2f}, '
          f'the rest (backbone, routing, task head) {(total - heads) / 1e9:.2f}')


if __name__ == '__main__':
    main()
