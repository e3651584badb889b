"""Print the local plan of a config: per local module its boundary, its heads
(independent / cascade, leap copies), their weights and loss weights after the
schedules, the modules each loss trains, PFF and the EMA branches.

The model is built on the CPU and the plan resolved exactly as training
resolves it (``mmlocal.local.LocalLearner``); the same table is logged once at
the start of training. A plan that leaves a module without gradient is refused
with an error naming the module and the setting.

Example::

    python tools/analysis/print_local_plan.py configs/resnet32_cifar10_infopro_hpff_k16.py
    python tools/analysis/print_local_plan.py configs/resnet32_cifar10_dgl_k16.py \
        --cfg-options optim_wrapper.local.num_modules=8
"""
import argparse
import copy
from typing import Optional, Sequence

import mmlocal  # noqa: F401  (compat + registration first)

from mmengine.config import Config, DictAction
from mmengine.logging import MMLogger
from mmengine.registry import MODELS, DefaultScope


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('config')
    p.add_argument('--cfg-options', nargs='+', action=DictAction)
    return p.parse_args(argv)


def local_plan(cfg: Config):
    """The ``LocalPlan`` of ``cfg`` (None for an end-to-end config)."""
    from mmengine.model import revert_sync_batchnorm

    from mmlocal.local import LocalLearner
    local = cfg.get('optim_wrapper', {}).get('local')
    if not local:
        return None
    model_cfg = copy.deepcopy(cfg.model)
    if cfg.get('data_preprocessor') is not None:
        model_cfg.setdefault('data_preprocessor', copy.deepcopy(cfg.data_preprocessor))
    for key in ('init_cfg', 'pretrained'):  # no checkpoint downloads for a plan
        model_cfg.get('backbone', {}).pop(key, None)
    with DefaultScope.overwrite_default_scope(cfg.get('default_scope', 'mmengine')):
        model = revert_sync_batchnorm(MODELS.build(model_cfg))
        learner = LocalLearner(model, copy.deepcopy(dict(local)))
    learner.remove()
    return learner.plan


def main(argv: Optional[Sequence[str]] = None) -> str:
    args = parse_args(argv)
    # the learner logs the plan at INFO; here it is printed once, below
    MMLogger.get_instance('print_local_plan', log_level='WARNING')
    cfg = Config.fromfile(args.config)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    plan = local_plan(cfg)
    text = 'end-to-end: no local modules' if plan is None else plan.format()
    print(text)
    return text


if __name__ == '__main__':
    main()
