# Train any mmseg / mmpretrain / mmdet config, with or without local learning.
import argparse
import os
import os.path as osp
import sys

import mmlocal  # noqa: F401,I001  (compat shims + registration first)
from mmengine.config import Config, DictAction

from mmlocal.apis import (build_runner, check_amp_available, close_distributed, enable_amp,
                          enable_auto_scale_lr, init_cpu_distributed,
                          set_default_collate, setup_cpu_distributed)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Train a model')
    parser.add_argument('config', help='train config file path')
    parser.add_argument('--work-dir', help='the dir to save logs and models')
    parser.add_argument(
        '--resume',
        nargs='?',
        type=str,
        const='auto',
        help='resume from the given checkpoint; alone, resume from the '
        'latest checkpoint in the work dir')
    parser.add_argument(
        '--amp',
        action='store_true',
        help='automatic mixed precision: mmengine\'s AmpOptimWrapper '
        '(needs a GPU)')
    parser.add_argument(
        '--auto-scale-lr',
        action='store_true',
        help='scale the learning rate by the actual total batch size over '
        '`auto_scale_lr.base_batch_size`')
    parser.add_argument(
        '--no-validate',
        action='store_true',
        help='do not evaluate checkpoints during training')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='override settings of the config, key=value pairs '
        '(e.g. train_cfg.max_iters=10); lists as key="[a,b]"')
    parser.add_argument(
        '--launcher',
        choices=['none', 'pytorch', 'slurm', 'mpi'],
        default='none',
        help='job launcher')
    # torch.distributed.launch passes --local-rank (torch>=2.0) or --local_rank
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    args = parser.parse_args()
    if 'LOCAL_RANK' not in os.environ:
        os.environ['LOCAL_RANK'] = str(args.local_rank)
    return args


def merge_args(cfg: Config, args: argparse.Namespace) -> Config:
    """Apply the command line to the config."""
    cfg.launcher = args.launcher
    if args.cfg_options is not None:
        cfg.merge_from_dict(args.cfg_options)

    # work_dir priority: CLI > config > ./work_dirs/<config stem>
    if args.work_dir is not None:
        cfg.work_dir = args.work_dir
    elif cfg.get('work_dir', None) is None:
        cfg.work_dir = osp.join('./work_dirs',
                                osp.splitext(osp.basename(args.config))[0])

    if args.amp:
        check_amp_available()
        enable_amp(cfg)
    if args.auto_scale_lr:
        enable_auto_scale_lr(cfg)

    if args.resume == 'auto':
        cfg.resume = True
        cfg.load_from = None
    elif args.resume is not None:
        cfg.resume = True
        cfg.load_from = args.resume

    if args.no_validate:
        cfg.val_cfg = None
        cfg.val_dataloader = None
        cfg.val_evaluator = None

    set_default_collate(cfg)
    setup_cpu_distributed(cfg, args.launcher)
    return cfg


def main() -> int:
    args = parse_args()
    cfg = Config.fromfile(args.config)
    try:
        cfg = merge_args(cfg, args)
    except RuntimeError as err:
        print(f'tools/train.py: error: {err}', file=sys.stderr)
        return 2

    init_cpu_distributed(cfg, args.launcher)
    runner = build_runner(cfg)
    runner.train()
    close_distributed()
    return 0


if __name__ == '__main__':
    sys.exit(main())
