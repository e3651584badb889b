"""Layer-wise linear separability of a trained model's local modules.

The papers' analysis (InfoPro Fig. 2/5, HPFF): freeze the network, take the
output of every local module (globally average-pooled), fit a linear
classifier on it and plot test accuracy against depth. Greedy local learning
collapses early features towards the task; HPFF/InfoPro keep them
informative::

    python tools/analysis/layerwise_probe.py \
        e2e=configs/resnet32_cifar10_e2e.py:work_dirs/e2e/epoch_10.pth \
        dgl=configs/resnet32_cifar10_dgl_k16.py:work_dirs/dgl/epoch_10.pth \
        --num-modules 16 --data-root data/cifar10 --train-subset 5000 \
        --out-prefix docs/layerwise_probe

The probe points are the boundaries of a K-module split of the backbone
(``--num-modules``, the same rule as training: the papers' presets where they
exist) plus the backbone output, identical for every model so curves compare.
"""
import argparse
import json
import os
import os.path as osp
import random
from typing import Dict, List, Optional, Sequence

import mmlocal  # noqa: F401

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmengine.config import Config
from mmengine.runner import Runner

from mmlocal.apis import build_model, strip_local_learner
from mmlocal.local.split import block_paths, resolve_boundaries
from mmlocal.utils.mmengine_adapter import checkpoint_to_model, read_checkpoint


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('models', nargs='+', metavar='NAME=CONFIG:CHECKPOINT')
    p.add_argument('--num-modules', type=int, default=16)
    p.add_argument('--data-root')
    p.add_argument('--train-subset', type=int, default=5000)
    p.add_argument('--test-subset', type=int, default=2000)
    p.add_argument('--batch-size', type=int, default=250)
    p.add_argument('--probe-epochs', type=int, default=30)
    p.add_argument('--probe-lr', type=float, default=1e-2)
    p.add_argument('--seed', type=int, default=0)
    p.add_argument('--device', default='cuda' if torch.cuda.is_available() else 'cpu')
    p.add_argument('--out-prefix', required=True)
    return p.parse_args(argv)


def _loader(cfg: Config, split_key: str, prefix: str, size: int, args) -> torch.utils.data.DataLoader:
    """Test-time pipeline (no augmentation) over a random subset of a split."""
    from mmpretrain.registry import DATASETS
    ds_cfg = cfg[split_key].dataset.copy()
    ds_cfg.pipeline = cfg.test_dataloader.dataset.pipeline
    if args.data_root:
        ds_cfg.data_root = args.data_root
    ds_cfg.data_prefix = prefix
    full = DATASETS.build({**ds_cfg, 'lazy_init': True})
    full.full_init()
    ds_cfg.indices = sorted(random.Random(args.seed).sample(range(len(full)), min(size, len(full))))
    return Runner.build_dataloader(dict(
        batch_size=args.batch_size, num_workers=2, dataset=ds_cfg,
        sampler=dict(type='DefaultSampler', shuffle=False)))


@torch.no_grad()
def extract(model: nn.Module, points: List[str], loader) -> Dict[str, torch.Tensor]:
    feats: Dict[str, List[torch.Tensor]] = {p: [] for p in points + ['labels']}
    handles = [model.get_submodule(p).register_forward_hook(
        lambda m, a, o, p=p: feats[p].append(
            (o.mean(dim=(2, 3)) if o.dim() == 4 else o.mean(dim=1)).float().cpu()))
        for p in points]
    model.eval()
    try:
        for data in loader:
            data = model.data_preprocessor(data, False)
            model.backbone(data['inputs'])
            feats['labels'].append(torch.cat([s.gt_label for s in data['data_samples']]).cpu())
    finally:
        for h in handles:
            h.remove()
    return {k: torch.cat(v) for k, v in feats.items()}


def fit_probe(xtr, ytr, xte, yte, num_classes: int, args) -> float:
    """Standardised features -> linear classifier (Adam, full batch); test accuracy."""
    mean, std = xtr.mean(0), xtr.std(0) + 1e-6
    xtr, xte = (xtr - mean) / std, (xte - mean) / std
    torch.manual_seed(args.seed)
    lin = nn.Linear(xtr.shape[1], num_classes)
    opt = torch.optim.Adam(lin.parameters(), lr=args.probe_lr, weight_decay=1e-4)
    for _ in range(args.probe_epochs * 10):
        opt.zero_grad()
        F.cross_entropy(lin(xtr), ytr).backward()
        opt.step()
    with torch.no_grad():
        return (lin(xte).argmax(1) == yte).float().mean().item() * 100


def probe_model(spec: str, args) -> Dict:
    name, rest = spec.split('=', 1)
    cfg_path, ckpt = rest.rsplit(':', 1)
    cfg = Config.fromfile(cfg_path)
    if 'default_scope' not in cfg:
        cfg.default_scope = 'mmpretrain'
    model = build_model(cfg)
    checkpoint = read_checkpoint(ckpt)
    strip_local_learner(checkpoint)  # the auxiliary heads are not probed
    # strict: a checkpoint of another network fails here, not as a bad curve
    checkpoint_to_model(model, checkpoint, strict=True, revise_keys=[(r'^module\.', '')])
    model.to(args.device)
    bounds = resolve_boundaries(model, args.num_modules)
    points = bounds + [block_paths(model)[-1]]
    train = extract(model, points, _loader(cfg, 'train_dataloader', 'train', args.train_subset, args))
    test = extract(model, points, _loader(cfg, 'test_dataloader', 'test', args.test_subset, args))
    n_cls = int(train['labels'].max()) + 1
    accs = [fit_probe(train[p], train['labels'], test[p], test['labels'], n_cls, args)
            for p in points]
    print(f'[layerwise_probe] {name}: ' + ' '.join(f'{a:.1f}' for a in accs), flush=True)
    return dict(name=name, config=cfg_path, checkpoint=ckpt, points=points, accuracy=accs)


def plot(rows: List[Dict], path: str) -> None:
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(6, 4))
    for r in rows:
        ax.plot(range(1, len(r['accuracy']) + 1), r['accuracy'], marker='o', label=r['name'])
    ax.set_xlabel('local module (depth)')
    ax.set_ylabel('linear probe test accuracy (%)')
    ax.grid(True, alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv: Optional[Sequence[str]] = None) -> List[Dict]:
    args = parse_args(argv)
    rows = [probe_model(spec, args) for spec in args.models]
    os.makedirs(osp.dirname(osp.abspath(args.out_prefix)), exist_ok=True)
    with open(args.out_prefix + '.json', 'w') as f:
        json.dump(dict(args=vars(args), rows=rows), f, indent=2)
    lines = ['| model | ' + ' | '.join(f'm{i + 1}' for i in range(len(rows[0]['accuracy']))) + ' |',
             '|---|' + '---:|' * len(rows[0]['accuracy'])]
    lines += [f"| {r['name']} | " + ' | '.join(f'{a:.1f}' for a in r['accuracy']) + ' |'
              for r in rows]
    with open(args.out_prefix + '.md', 'w') as f:
        f.write('\n'.join(lines) + '\n')
    plot(rows, args.out_prefix + '.png')
    print('\n'.join(lines))
    return rows


if __name__ == '__main__':
    main()
