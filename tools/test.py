# Test (and evaluate) any mmseg / mmpretrain / mmdet checkpoint, including
# checkpoints of locally trained models (their auxiliary heads are ignored).
import argparse
import os
import os.path as osp
import sys

import mmlocal  # noqa: F401,I001  (compat shims + registration first)
from mmengine.config import Config, DictAction

from mmlocal.apis import (build_runner, close_distributed, enable_dump,
                          enable_tta, enable_visualization, init_cpu_distributed,
                          set_default_collate, setup_cpu_distributed)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Test (and eval) a model')
    parser.add_argument('config', help='test config file path')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument(
        '--work-dir',
        help='the dir to save logs and the evaluation metrics')
    parser.add_argument(
        '--out',
        help='save the predictions: a .pkl file (mmpretrain, mmdet, others) '
        'or, for mmseg configs, a folder of prediction maps')
    parser.add_argument(
        '--show-dir', help='folder where painted predictions are saved')
    parser.add_argument(
        '--tta',
        action='store_true',
        help='test-time augmentation (the config\'s `tta_model` and '
        '`tta_pipeline`, e.g. multi-scale + flip for mmseg)')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='override settings of the config, key=value pairs')
    parser.add_argument(
        '--launcher',
        choices=['none', 'pytorch', 'slurm', 'mpi'],
        default='none',
        help='job launcher')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    args = parser.parse_args()
    if 'LOCAL_RANK' not in os.environ:
        os.environ['LOCAL_RANK'] = str(args.local_rank)
    return args


def merge_args(cfg: Config, args: argparse.Namespace):
    """Apply the command line; return the config and an extra dump metric."""
    cfg.launcher = args.launcher
    if args.cfg_options is not None:
        cfg.merge_from_dict(args.cfg_options)

    if args.work_dir is not None:
        cfg.work_dir = args.work_dir
    elif cfg.get('work_dir', None) is None:
        cfg.work_dir = osp.join('./work_dirs',
                                osp.splitext(osp.basename(args.config))[0])
    cfg.load_from = args.checkpoint
    cfg.resume = False

    if args.show_dir is not None:
        enable_visualization(cfg, args.show_dir)
    if args.tta:
        enable_tta(cfg)
    dump_metric = enable_dump(cfg, args.out) if args.out else None
    set_default_collate(cfg)
    setup_cpu_distributed(cfg, args.launcher)
    return cfg, dump_metric


def main() -> int:
    args = parse_args()
    cfg = Config.fromfile(args.config)
    try:
        cfg, dump_metric = merge_args(cfg, args)
    except (RuntimeError, ValueError) as err:
        print(f'tools/test.py: error: {err}', file=sys.stderr)
        return 2

    init_cpu_distributed(cfg, args.launcher)
    runner = build_runner(cfg)
    if dump_metric is not None:
        runner.test_evaluator.metrics.append(dump_metric)
    runner.test()
    close_distributed()
    return 0


if __name__ == '__main__':
    sys.exit(main())
