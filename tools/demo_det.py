"""Train Faster R-CNN R50-FPN on the bundled detection set and compare methods.

Every method is a real config of ``configs/`` (E2E, DGL K=4, InfoPro+HPFF
K=4, each with box-aware local heads) trained through mmengine's Runner on
``data/det_mini`` (real pixels, generated layouts: see data/README.md) with a
schedule short enough for a CPU, then evaluated with mmdet's ``CocoMetric``
on its 40 val images. Each method runs in its own process, so its peak memory
is its own::

    python tools/demo_det.py                   # 50 iterations at batch 2 per method
    python tools/demo_det.py --methods e2e dgl --iters 8   # a smoke run

No pretrained weights can be downloaded here, so the detectors train from
scratch (random init, BN in training mode, no frozen stages): absolute mAP
after a few hundred iterations is low; the table shows that every method
trains and evaluates, and what each costs. Predictions on a val image are
drawn by mmdet's ``DetLocalVisualizer`` into ``work_dirs/demo_det/``.
"""
import argparse
import json
import os
import os.path as osp
import subprocess
import sys
import time
from typing import Dict, List, NamedTuple

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))


class Method(NamedTuple):
    key: str  # command-line name and work-dir name
    name: str  # shown in the table
    config: str  # relative to the repository root


#: The demo's methods, in table order.
METHODS: List[Method] = [
    Method('e2e', 'E2E (backprop)', 'configs/faster-rcnn_r50_fpn_coco_e2e.py'),
    Method('dgl', 'DGL K=4', 'configs/faster-rcnn_r50_fpn_coco_dgl_k4.py'),
    Method('infopro_hpff', 'InfoPro+HPFF K=4',
           'configs/faster-rcnn_r50_fpn_coco_infopro_hpff_k4.py'),
]


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Train Faster R-CNN on the bundled detection set with each '
        'method and print an mAP / memory / time table.')
    parser.add_argument('--methods', nargs='+', choices=[m.key for m in METHODS],
                        default=[m.key for m in METHODS])
    parser.add_argument('--iters', type=int, default=50)
    parser.add_argument('--batch-size', type=int, default=2)
    parser.add_argument('--lr', type=float, default=0.01)
    parser.add_argument('--size', type=int, default=256,
                        help='images are resized to fit size x size')
    parser.add_argument('--data-root', default=osp.join(ROOT, 'data', 'det_mini'))
    parser.add_argument('--work-dir', default=osp.join(ROOT, 'work_dirs', 'demo_det'))
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--threads', type=int, default=None,
                        help='torch CPU threads (default: torch\'s choice)')
    parser.add_argument('--run-one', help=argparse.SUPPRESS)  # child process
    return parser.parse_args()


def classes_of(data_root: str) -> List[str]:
    with open(osp.join(data_root, 'annotations', 'instances_train.json')) as f:
        cats = sorted(json.load(f)['categories'], key=lambda c: c['id'])
    return [c['name'] for c in cats]


def demo_options(args: argparse.Namespace, classes: List[str]) -> Dict:
    """The short CPU schedule and the data set, shared by every method."""
    scale = (args.size, args.size)
    n = len(classes)
    opts = {
        'model.backbone.init_cfg': None,  # offline: from scratch
        'model.backbone.frozen_stages': -1,
        'model.backbone.norm_eval': False,
        'model.roi_head.bbox_head.num_classes': n,
        # a light two-stage schedule for CPUs: at most 4 objects per image
        'model.train_cfg.rpn_proposal.max_per_img': 300,
        'model.train_cfg.rcnn.sampler.num': 128,
        'model.test_cfg.rpn.max_per_img': 100,
        # keep low-score boxes: a short run from scratch scores below mmdet's
        # 0.05 threshold, and CocoMetric has nothing to evaluate without boxes
        'model.test_cfg.rcnn.score_thr': 0.0,
        'train_dataloader.dataset.pipeline.2.scale': scale,
        'val_dataloader.dataset.pipeline.1.scale': scale,
        'test_dataloader.dataset.pipeline.1.scale': scale,
        'optim_wrapper.optimizer.lr': args.lr,
        'optim_wrapper.clip_grad': dict(max_norm=35, norm_type=2),
        'param_scheduler': [
            dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0,
                 end=min(50, args.iters)),
        ],
        'train_cfg': dict(_delete_=True, type='IterBasedTrainLoop',
                          max_iters=args.iters, val_interval=args.iters + 1),
        'train_dataloader.batch_size': args.batch_size,
        'train_dataloader.sampler': dict(_delete_=True, type='InfiniteSampler', shuffle=True),
        'train_dataloader.batch_sampler': None,
        'default_hooks.checkpoint': dict(type='CheckpointHook', interval=args.iters,
                                         by_epoch=False, max_keep_ckpts=1),
        'default_hooks.logger': dict(type='LoggerHook', interval=10),
        'log_processor': dict(by_epoch=False),
        'randomness': dict(seed=args.seed),
        'val_dataloader': None, 'val_cfg': None, 'val_evaluator': None,
    }
    for split, ann, folder in (('train', 'train', 'train'), ('test', 'val', 'val')):
        opts[f'{split}_dataloader.dataset.data_root'] = args.data_root
        opts[f'{split}_dataloader.dataset.ann_file'] = f'annotations/instances_{ann}.json'
        opts[f'{split}_dataloader.dataset.data_prefix'] = dict(img=f'{folder}/')
        opts[f'{split}_dataloader.dataset.metainfo'] = dict(classes=tuple(classes))
        opts[f'{split}_dataloader.num_workers'] = 0
        opts[f'{split}_dataloader.persistent_workers'] = False
    opts['test_evaluator.ann_file'] = osp.join(args.data_root, 'annotations',
                                               'instances_val.json')
    return opts


def run_one(args: argparse.Namespace, method: Method) -> Dict:
    """Train and test one method in this process; return its results."""
    import mmlocal  # noqa: F401  (compat shims and registration first)
    import torch
    from mmengine.config import Config
    from mmengine.runner import Runner

    if args.threads:
        torch.set_num_threads(args.threads)
    classes = classes_of(args.data_root)
    cfg = Config.fromfile(osp.join(ROOT, method.config))
    cfg.merge_from_dict(demo_options(args, classes))
    cfg.work_dir = osp.join(args.work_dir, method.key)

    runner = Runner.from_cfg(cfg)
    start = time.perf_counter()
    runner.train()
    train_time = time.perf_counter() - start
    metrics = runner.test()
    picture = draw_predictions(runner, cfg, args)
    peak_mb = peak_step_memory(runner)
    return dict(
        method=method.name,
        config=method.config,
        # CocoMetric returns nothing when no image has a box
        bbox_mAP=float(metrics.get('coco/bbox_mAP', 0.)),
        bbox_mAP_50=float(metrics.get('coco/bbox_mAP_50', 0.)),
        train_time_s=train_time,
        peak_memory_mb=peak_mb,
        iters=args.iters,
        batch_size=args.batch_size,
        picture=picture,
    )


def draw_predictions(runner, cfg, args: argparse.Namespace) -> str:
    """The first val image's predictions (score >= 0.3), drawn by mmdet's
    visualizer next to the ground truth."""
    import mmcv
    from mmdet.apis import inference_detector
    model = runner.model
    model.cfg = cfg
    dataset = runner.test_dataloader.dataset
    info = dataset.get_data_info(0)
    result = inference_detector(model, info['img_path'])
    gt = dataset[0]['data_samples'].gt_instances
    gt.bboxes = gt.bboxes.tensor  # box type to tensor, as mmdet's data preprocessor does
    result.gt_instances = gt
    visualizer = runner.visualizer  # the config's DetLocalVisualizer
    visualizer.dataset_meta = dataset.metainfo
    out = osp.join(cfg.work_dir, 'predictions.png')
    image = mmcv.imread(info['img_path'], channel_order='rgb')
    visualizer.add_datasample('val', image, result, draw_gt=True, pred_score_thr=0.3,
                              show=False, out_file=out)
    return out


def peak_step_memory(runner) -> float:
    """Peak live tensor memory (MB) of one training step at the demo's batch
    size (``mmlocal.utils.memory``: CPU allocator events, or the CUDA
    allocator); the second of two tracked steps is measured."""
    import torch
    from mmlocal.utils.memory import MB, PeakMemoryTracker
    model, wrapper = runner.model, runner.optim_wrapper
    model.train()
    batch = next(iter(runner.train_dataloader))
    device = next(model.parameters()).device
    with PeakMemoryTracker(device, baseline=(model, wrapper)) as tracker:
        model.train_step(batch, wrapper)
        tracker.reset_peak()
        model.train_step(batch, wrapper)
    del batch
    torch.cuda.empty_cache() if device.type == 'cuda' else None
    return tracker.stats.peak_bytes / MB


def format_table(results: List[Dict]) -> str:
    header = ('| method | bbox mAP | mAP@0.5 | peak training memory (MB) '
              '| memory vs E2E | train time (s) |')
    lines = [header, '|---|---:|---:|---:|---:|---:|']
    ref = next((r for r in results if 'error' not in r), None)
    for r in results:
        if 'error' in r:
            lines.append(f'| {r["method"]} | failed: {r["error"]} | - | - | - | - |')
            continue
        ratio = r['peak_memory_mb'] / ref['peak_memory_mb']
        lines.append(f'| {r["method"]} | {r["bbox_mAP"]:.3f} | {r["bbox_mAP_50"]:.3f} '
                     f'| {r["peak_memory_mb"]:.1f} | {ratio:.2f}x | {r["train_time_s"]:.1f} |')
    return '\n'.join(lines)


def side_by_side(results: List[Dict], path: str) -> None:
    """One picture: each method's drawn predictions, left to right."""
    import mmcv
    import numpy as np
    images = [mmcv.imread(r['picture']) for r in results if 'error' not in r]
    if not images:
        return
    h = max(i.shape[0] for i in images)
    images = [np.pad(i, ((0, h - i.shape[0]), (0, 8), (0, 0)), constant_values=255)
              for i in images]
    mmcv.imwrite(np.concatenate(images, axis=1), path)


def main() -> int:
    args = parse_args()
    by_key = {m.key: m for m in METHODS}
    if args.run_one:  # child: one method, results to a JSON file
        result = run_one(args, by_key[args.run_one])
        out = osp.join(args.work_dir, args.run_one, 'demo_result.json')
        with open(out, 'w') as f:
            json.dump(result, f, indent=2)
        return 0

    if not osp.exists(osp.join(args.data_root, 'annotations', 'instances_train.json')):
        print(f'tools/demo_det.py: error: no detection set under {args.data_root!r}; '
              'build it with `python tools/prepare_det_data.py ../shared/data '
              'data/det_mini` (see data/README.md)', file=sys.stderr)
        return 2
    results = []
    for key in args.methods:
        method = by_key[key]
        print(f'[demo-det] training {method.name} ({method.config}): '
              f'{args.iters} iterations, batch {args.batch_size}', flush=True)
        os.makedirs(osp.join(args.work_dir, key), exist_ok=True)
        out = osp.join(args.work_dir, key, 'demo_result.json')
        if osp.exists(out):
            os.remove(out)
        child = [sys.executable, osp.abspath(__file__), '--run-one', key]
        for flag in ('iters', 'batch_size', 'lr', 'size', 'data_root', 'work_dir', 'seed',
                     'threads'):
            value = getattr(args, flag)
            if value is not None:
                child += [f'--{flag.replace("_", "-")}', str(value)]
        log = osp.join(args.work_dir, key, 'demo_stdout.log')
        with open(log, 'w') as f:
            proc = subprocess.run(child, stdout=f, stderr=subprocess.STDOUT, cwd=ROOT)
        if proc.returncode != 0 or not osp.exists(out):
            print(f'[demo-det] {method.name} failed (exit {proc.returncode}); see {log}',
                  file=sys.stderr)
            results.append(dict(method=method.name, error=f'exit {proc.returncode}'))
            continue
        with open(out) as f:
            results.append(json.load(f))
        r = results[-1]
        print(f'[demo-det] {method.name}: bbox mAP {r["bbox_mAP"]:.3f} '
              f'in {r["train_time_s"]:.1f} s', flush=True)

    print(f'\nFaster R-CNN R50-FPN from scratch, {args.data_root}: {args.iters} '
          f'iterations at batch {args.batch_size}, {args.size}px, CPU; CocoMetric on '
          'its val images\n')
    print(format_table(results))
    with open(osp.join(args.work_dir, 'results.json'), 'w') as f:
        json.dump(results, f, indent=2)
    picture = osp.join(args.work_dir, 'predictions.png')
    side_by_side(results, picture)
    print(f'\npredictions (mmdet DetLocalVisualizer; left to right: '
          f'{", ".join(r["method"] for r in results)}): {picture}')
    return 0 if all('error' not in r for r in results) else 1


if __name__ == '__main__':
    sys.exit(main())
