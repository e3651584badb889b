"""Print the local plan of a config: per local module its boundary, its heads
(independent / cascade, leap copies), their weights and loss weights after the
schedules, the modules each loss trains, PFF and the EMA branches; then what
each local head sees (channels, map, stride) and which head the method built.

The model is built on the CPU and the plan resolved exactly as training
resolves it (``mmlocal.local.build_learner``); the same table is logged once at
the start of training. A plan that leaves a module without gradient is refused
with an error naming the module and the setting. Any toolbox zoo config works
(``mmpretrain::``, ``mmseg::``, ``mmdet::`` names): ``--num-modules K`` gives
it the local delta a user would add, ``local=dict(num_modules=K)``.

Example::

    python tools/analysis/print_local_plan.py configs/resnet32_cifar10_infopro_hpff_k16.py
    python tools/analysis/print_local_plan.py configs/resnet32_cifar10_dgl_k16.py \
        --cfg-options optim_wrapper.local.num_modules=8
    python tools/analysis/print_local_plan.py \
        mmseg::segformer/segformer_mit-b0_8xb2-160k_ade20k-512x512.py --num-modules 4
"""
import argparse
import copy
from typing import Optional, Sequence

import mmlocal  # noqa: F401  (compat + registration first)

from mmengine.config import Config, DictAction
from mmengine.logging import MMLogger
from mmengine.registry import MODELS, DefaultScope

from mmlocal.apis import load_config


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('config', help='a config file or a zoo name (mmpretrain::...)')
    p.add_argument('--num-modules', type=int,
                   help='K for a config without optim_wrapper.local (local=dict(num_modules=K))')
    p.add_argument('--cfg-options', nargs='+', action=DictAction)
    return p.parse_args(argv)


def local_learner(cfg: Config):
    """The ``LocalLearner`` of ``cfg`` built on the CPU, hooks removed (None
    for an end-to-end config)."""
    from mmengine.model import revert_sync_batchnorm

    from mmlocal.local import build_learner
    local = cfg.get('optim_wrapper', {}).get('local')
    if not local:
        return None
    model_cfg = copy.deepcopy(cfg.model)
    if cfg.get('data_preprocessor') is not None:
        model_cfg.setdefault('data_preprocessor', copy.deepcopy(cfg.data_preprocessor))
    model_cfg.pop('pretrained', None)  # no checkpoint downloads for a plan
    for part in ('backbone', 'neck'):
        if isinstance(model_cfg.get(part), dict):
            model_cfg[part].pop('init_cfg', None)
            model_cfg[part].pop('pretrained', None)
    with DefaultScope.overwrite_default_scope(cfg.get('default_scope', 'mmengine')):
        model = revert_sync_batchnorm(MODELS.build(model_cfg))
        learner = build_learner(model, copy.deepcopy(dict(local)))
    learner.remove()
    return learner


def local_plan(cfg: Config):
    """The ``LocalPlan`` of ``cfg`` (None for an end-to-end config)."""
    learner = local_learner(cfg)
    return None if learner is None else learner.plan


def heads_table(learner) -> str:
    """What each local head sees and which head the method built."""
    lines = [f'local heads ({learner.task.task}, {learner.task.num_classes} classes, '
             f'probe {learner.probe.size[0]}x{learner.probe.size[1]}):',
             '| module | boundary | feature (C, HxW, stride) | head |', '|---|---|---|---|']
    for hp in learner.plan.heads:
        feat = learner.probe.feature(learner.boundaries[hp.module])
        head = learner.head(hp)
        inner = [type(m).__name__ for m in head.children()]
        kind = type(head).__name__ + (f' ({", ".join(inner)})' if inner else '')
        tokens = ' tokens' if feat.tokens else ''
        lines.append(f'| local.{hp.key} | {learner.boundaries[hp.module]} | {feat.channels}, '
                     f'{feat.spatial[0]}x{feat.spatial[1]}, {feat.stride}{tokens} | {kind} |')
    return '\n'.join(lines)


def main(argv: Optional[Sequence[str]] = None) -> str:
    args = parse_args(argv)
    # the learner logs the plan at INFO; here it is printed once, below
    MMLogger.get_instance('print_local_plan', log_level='WARNING')
    cfg = load_config(args.config, args.cfg_options)
    if args.num_modules is not None:
        local = dict(cfg.get('optim_wrapper', {}).get('local') or {})
        local.pop('boundaries', None)
        local['num_modules'] = args.num_modules
        cfg.merge_from_dict({'optim_wrapper.local': local})
    learner = local_learner(cfg)
    if learner is None:
        text = ('end-to-end: no local modules (give --num-modules K to see the split '
                'local=dict(num_modules=K) makes)')
    else:
        text = learner.plan.format() + '\n' + heads_table(learner)
    print(text)
    return text


if __name__ == '__main__':
    main()
