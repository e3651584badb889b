"""What mmseg, mmpretrain and mmdet do differently in their own tools.

One class per toolbox, registered in ``TOOLBOXES`` under its default scope,
so the tools ask ``get_toolbox(cfg)`` instead of testing the scope string.
``Toolbox`` itself is the behaviour for any other scope.
"""
import copy
from typing import Any, Optional, Tuple

import torch

from mmlocal.registry import TOOLBOXES


class Toolbox:
    """Behaviour of a config whose scope no registered toolbox claims."""

    #: the config's ``default_scope``; None: mmengine's own
    scope: Optional[str] = None

    def set_default_collate(self, cfg: Any) -> None:
        """Give the dataloaders the collate function the toolbox's tools use."""

    def enable_visualization(self, cfg: Any, show_dir: str) -> None:
        """Let the ``visualization`` hook paint predictions into ``show_dir``.

        The generic hook (mmseg's ``SegVisualizationHook`` and alike) draws
        when ``draw=True`` and saves through the visualizer's ``save_dir``.
        """
        _visualization_hook(cfg)['draw'] = True
        cfg.visualizer['save_dir'] = show_dir

    def default_tta(self, cfg: Any) -> None:
        """Fill in the toolbox's default ``tta_model``/``tta_pipeline``, if any."""

    def dump_metric(self, cfg: Any, out: str) -> Optional[Any]:
        """The metric that saves predictions to ``out`` (``--out``).

        Returns None when the toolbox's own evaluator writes them instead.
        """
        _require_pickle(out)
        from mmengine.evaluator import DumpResults
        return DumpResults(out_file_path=out)

    def synthetic_samples(self, cfg: Any, batch_size: int, hw: Tuple[int, int],
                          generator: torch.Generator) -> list:
        """Data samples with random targets for ``batch_size`` images of size ``hw``."""
        raise ValueError(
            f'--synthetic supports mmpretrain (classification), mmseg '
            f'(segmentation) and mmdet (box detection) configs, not default_scope '
            f'{self.scope!r}: benchmark it on its dataset instead.')


@TOOLBOXES.register_module(name='mmpretrain')
class PretrainToolbox(Toolbox):
    scope = 'mmpretrain'

    def set_default_collate(self, cfg: Any) -> None:
        """mmpretrain's tools batch with ``default_collate``."""
        for field in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
            if cfg.get(field, None) is not None:
                cfg[field].setdefault('collate_fn', dict(type='default_collate'))

    def enable_visualization(self, cfg: Any, show_dir: str) -> None:
        """``VisualizationHook(enable, out_dir)``; its default interval (5000)
        would paint nothing in a short test."""
        hook = _visualization_hook(cfg)
        hook['enable'] = True
        hook['out_dir'] = show_dir
        hook.setdefault('interval', 1)

    def default_tta(self, cfg: Any) -> None:
        """mmpretrain's default: flipped and unflipped, scores averaged."""
        if 'tta_model' not in cfg:
            cfg.tta_model = dict(type='mmpretrain.AverageClsScoreTTA')
        if 'tta_pipeline' not in cfg:
            test_pipeline = cfg.test_dataloader.dataset.pipeline
            cfg.tta_pipeline = copy.deepcopy(test_pipeline)
            cfg.tta_pipeline[-1] = dict(
                type='TestTimeAug',
                transforms=[[dict(type='RandomFlip', prob=1.),
                             dict(type='RandomFlip', prob=0.)],
                            [test_pipeline[-1]]])

    def synthetic_samples(self, cfg: Any, batch_size: int, hw: Tuple[int, int],
                          generator: torch.Generator) -> list:
        from mmlocal.analysis.batch import classification_samples
        num_classes = (cfg.model.get('head') or {}).get('num_classes', 10)
        return classification_samples(num_classes, batch_size, hw, generator)


@TOOLBOXES.register_module(name='mmseg')
class SegToolbox(Toolbox):
    scope = 'mmseg'

    def dump_metric(self, cfg: Any, out: str) -> None:
        """mmseg's evaluator writes prediction maps to a folder itself."""
        evaluator = cfg.test_evaluator
        if isinstance(evaluator, (list, tuple)):
            evaluator = evaluator[0]
        evaluator['output_dir'] = out
        evaluator['keep_results'] = True
        return None

    def synthetic_samples(self, cfg: Any, batch_size: int, hw: Tuple[int, int],
                          generator: torch.Generator) -> list:
        from mmlocal.analysis.batch import segmentation_samples
        num_classes = cfg.model.get('decode_head', {}).get('num_classes', 19)
        return segmentation_samples(num_classes, batch_size, hw, generator)


@TOOLBOXES.register_module(name='mmdet')
class DetToolbox(Toolbox):
    scope = 'mmdet'

    def enable_visualization(self, cfg: Any, show_dir: str) -> None:
        """``DetVisualizationHook(draw, test_out_dir)``."""
        hook = _visualization_hook(cfg)
        hook['draw'] = True
        hook['test_out_dir'] = show_dir

    def dump_metric(self, cfg: Any, out: str) -> Any:
        _require_pickle(out)
        from mmdet.evaluation import DumpDetResults
        return DumpDetResults(out_file_path=out)

    def synthetic_samples(self, cfg: Any, batch_size: int, hw: Tuple[int, int],
                          generator: torch.Generator) -> list:
        """Boxes of 10-30% of the image side at random places, random labels.
        Box detectors only: a mask head needs masks, which are not drawn."""
        from mmlocal.analysis.batch import detection_samples
        model = cfg.model
        if (model.get('roi_head') or {}).get('mask_head') is not None:
            raise ValueError('--synthetic draws boxes only; a mask head needs masks: '
                             'benchmark this config on its dataset instead.')
        head = model.get('bbox_head') or (model.get('roi_head') or {}).get('bbox_head') or {}
        return detection_samples(head.get('num_classes', 80), batch_size, hw, generator)


def get_toolbox(cfg_or_scope: Any) -> Toolbox:
    """The toolbox of a config (its ``default_scope``) or of a scope name."""
    scope = cfg_or_scope if cfg_or_scope is None or isinstance(cfg_or_scope, str) \
        else cfg_or_scope.get('default_scope', None)
    toolbox = TOOLBOXES.get(scope) if scope else None
    return toolbox() if toolbox is not None else _generic(scope)


def _generic(scope: Optional[str]) -> Toolbox:
    toolbox = Toolbox()
    toolbox.scope = scope
    return toolbox


def _visualization_hook(cfg: Any) -> dict:
    hooks = cfg.get('default_hooks', {}) or {}
    if 'visualization' not in hooks:
        raise RuntimeError(
            '--show-dir needs a visualization hook in `default_hooks`, e.g. '
            '`default_hooks = dict(visualization=dict('
            "type='SegVisualizationHook'))`.")
    return hooks['visualization']


def _require_pickle(out: str) -> None:
    if not out.endswith(('.pkl', '.pickle')):
        raise ValueError(f'--out must be a .pkl file, got {out!r}')
