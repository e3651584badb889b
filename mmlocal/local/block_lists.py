"""Where a backbone's blocks are: its execution-ordered block paths.

A *block* is a submodule the backbone's forward calls with one tensor and
that returns one tensor (a token sequence is a tensor; its grid is read
from the block's ``hw_shape`` argument, see ``probe.py``). Boundaries of a
split are blocks, so a block list must name the modules the forward really
calls one after another, not the containers that hold them (a
``ModuleList`` is never called).

``BLOCK_LISTS`` maps a backbone class name (looked up along the class's
MRO, so ``SEResNet`` finds ``ResNet``'s) to a function ``backbone -> paths``
relative to the backbone. A function whose first block is the backbone's
stem (the convolutions and pooling before the first stage) returns a
:class:`BlockList` with ``stem=True``: the stem is marked where the list is
made, and the split, the plan, MLAAN's tables and ``bn_updates`` read the
mark (``BlockList.stem``), not the path's name. ``SPLIT_LIMITS`` says, for backbones whose forward
leaves few places to cut, why the list stops where it does; the error for a
K that does not fit repeats it. ``OUTPUT_NORMS`` names the modules that only
turn a stage output into a backbone output (Swin's and ConvNeXt's
``norm{i}``): they belong with the consumers of that output (neck, decode
head), so under local learning they take their input detached when it comes
from a module that is not the last, and train with the task loss.
"""
import inspect
from typing import Callable, Dict, Iterable, List, Optional

import torch.nn as nn

from mmlocal.registry import BLOCK_LISTS


class BlockList(List[str]):
    """Execution-ordered block paths with the stem marked: ``stem`` is the
    first path when it is the backbone's stem, else None. A ``list`` (every
    consumer of block paths reads it as one); slices are plain lists."""

    def __init__(self, paths: Iterable[str] = (), stem: bool = False) -> None:
        super().__init__(paths)
        self.stem: Optional[str] = self[0] if stem and len(self) else None

    def prefixed(self, prefix: str) -> 'BlockList':
        """The same list with ``prefix.`` before every path (mark kept)."""
        return BlockList([f'{prefix}.{p}' for p in self], stem=self.stem is not None)


def stem_of(paths: Iterable[str]) -> Optional[str]:
    """The stem path a block list marks (None: none, or a plain list)."""
    return getattr(paths, 'stem', None)

#: backbone class -> why its block list is shorter than its depth
SPLIT_LIMITS: Dict[str, str] = {
    'HRNet': ('HRNet runs parallel branches from stage 2 on and exchanges features between them '
              'in every HRModule (its stages take and return lists of tensors), so no single '
              'tensor separates an earlier part from a later one after layer1: mmlocal cuts HRNet '
              'only between the blocks of layer1; everything after is the last module'),
}


def _expand(backbone: nn.Module, path: str) -> List[str]:
    """A stage that is a ``Sequential`` runs its children in order: they are
    the blocks; any other module is one block."""
    module = backbone.get_submodule(path)
    if isinstance(module, nn.Sequential) and len(module) > 0:
        return [f'{path}.{i}' for i in range(len(module))]
    return [path]


#: backbone class -> name prefix of its output-only norms (``norm0``, ``norm1``, ...)
OUTPUT_NORMS: Dict[str, str] = {'SwinTransformer': 'norm', 'SwinTransformerV2': 'norm',
                                'ConvNeXt': 'norm'}


# ------------------------------------------------------------------ ResNets
@BLOCK_LISTS.register_module(name=['CifarResNet', 'ResNet', 'ResNetV1c', 'ResNetV1d',
                                   'ResNeXt', 'ResNet_CIFAR', 'ResNetV1b'])
def resnet_blocks(backbone: nn.Module) -> List[str]:
    """Residual blocks of every stage (``res_layers``), the stem first: its
    max-pool when it has one (ImageNet ResNets), else its ``stem`` module.
    Covers the ResNet subclasses of mmpretrain, mmseg and mmdet (ResNeXt,
    SE-ResNet/ResNeXt, Res2Net, RegNet, ResNeSt, ResNetV1c/V1d)."""
    stem = [name for name in ('maxpool', 'stem')
            if isinstance(getattr(backbone, name, None), nn.Module)][:1]
    layers = getattr(backbone, 'res_layers', None) or [
        n for n, _ in backbone.named_children() if n.startswith('layer')]
    blocks = [f'{layer}.{i}' for layer in layers
              for i in range(len(getattr(backbone, layer)))]
    return BlockList(stem + blocks, stem=bool(stem))


# ----------------------------------------------------------- transformers
@BLOCK_LISTS.register_module(name=['VisionTransformer', 'DeiT', 'ViT'])
def vit_blocks(backbone: nn.Module) -> List[str]:
    """One encoder layer per block (mmpretrain ViT/DeiT/DeiT-distilled and
    their subclasses, mmseg ViT)."""
    return [f'layers.{i}' for i in range(len(backbone.layers))]


@BLOCK_LISTS.register_module(name=['SwinTransformer', 'SwinTransformerV2'])
def swin_blocks(backbone: nn.Module) -> List[str]:
    """Swin blocks of every stage (mmpretrain v1/v2, mmseg, mmdet); each is
    called with (tokens, hw_shape). Patch merging runs between stages, in
    the module of the block after it."""
    return [f'stages.{i}.blocks.{j}' for i, stage in enumerate(backbone.stages)
            for j in range(len(stage.blocks))]


@BLOCK_LISTS.register_module(name='MixVisionTransformer')
def mit_blocks(backbone: nn.Module) -> List[str]:
    """SegFormer's MiT: each stage is a ModuleList (patch embedding, blocks,
    norm) that the forward unpacks; the blocks are ``layers.i.1.j``, called
    with (tokens, hw_shape)."""
    return [f'layers.{i}.1.{j}' for i, stage in enumerate(backbone.layers)
            for j in range(len(stage[1]))]


# --------------------------------------------------------------- ConvNets
@BLOCK_LISTS.register_module(name='ConvNeXt')
def convnext_blocks(backbone: nn.Module) -> List[str]:
    """ConvNeXt blocks of every stage; each stage's downsampling layer runs
    before its first block (the first one is the stem)."""
    return [f'stages.{i}.{j}' for i, stage in enumerate(backbone.stages)
            for j in range(len(stage))]


@BLOCK_LISTS.register_module(name=['MobileNetV2', 'MobileNetV3', 'CSPDarknet', 'CSPNeXt'])
def named_layer_blocks(backbone: nn.Module) -> List[str]:
    """Backbones whose forward runs the modules named in ``self.layers`` in
    order (mmpretrain/mmseg MobileNetV2/V3, mmdet CSPDarknet of YOLOX and
    CSPNeXt of RTMDet); a ``Sequential`` stage contributes its children.
    A CSP layer is one block: its two paths are concatenated inside it; the
    stem is one block too."""
    return BlockList([p for name in backbone.layers
                      for p in ([name] if name == 'stem' else _expand(backbone, name))],
                     stem=bool(backbone.layers) and backbone.layers[0] == 'stem')


@BLOCK_LISTS.register_module(name=['EfficientNet', 'EfficientNetV2'])
def efficientnet_blocks(backbone: nn.Module) -> List[str]:
    """EfficientNet: ``layers`` holds the stem, one ``Sequential`` per stage
    and the final conv, run in order."""
    return [p for i in range(len(backbone.layers)) for p in _expand(backbone, f'layers.{i}')]


@BLOCK_LISTS.register_module(name='HRNet')
def hrnet_blocks(backbone: nn.Module) -> List[str]:
    """HRNet (mmpretrain, mmseg): the blocks of ``layer1`` only, see
    ``SPLIT_LIMITS['HRNet']``."""
    return _expand(backbone, 'layer1')


# ------------------------------------------------------------------ lookup
def get_function(registry, name: str) -> Optional[Callable]:
    """``registry.get`` for function registries: ``None`` when ``name`` is
    not registered (``get`` would also resolve importable dotted names)."""
    fn = registry.get(name)
    return fn if inspect.isfunction(fn) else None


def lookup_by_class(registry, obj: nn.Module) -> Optional[Callable]:
    """The registry entry of ``obj``'s class or of its nearest base class."""
    for cls in type(obj).__mro__:
        fn = get_function(registry, cls.__name__)
        if fn is not None:
            return fn
    return None


def split_limit(backbone: nn.Module) -> str:
    """Why this backbone's block list stops early ('' when it does not)."""
    for cls in type(backbone).__mro__:
        if cls.__name__ in SPLIT_LIMITS:
            return SPLIT_LIMITS[cls.__name__]
    return ''


def block_paths(model: nn.Module, backbone_path: str = 'backbone') -> BlockList:
    """Execution-ordered block paths of the model's backbone (model relative).

    The first entry may be the stem (``BlockList.stem``); the boundary
    candidates are all but the last entry.
    """
    backbone = model.get_submodule(backbone_path)
    fn = lookup_by_class(BLOCK_LISTS, backbone)
    if fn is None:
        if hasattr(backbone, 'res_layers'):
            fn = resnet_blocks
        elif isinstance(getattr(backbone, 'layers', None), nn.ModuleList):
            fn = vit_blocks
        else:
            raise ValueError(
                f'mmlocal has no block list for {type(backbone).__name__}: give '
                'local.boundaries explicitly (dotted module paths of blocks its forward calls '
                'one after another) or register a function in mmlocal.registry.BLOCK_LISTS')
    blocks = fn(backbone)
    return (blocks if isinstance(blocks, BlockList) else BlockList(blocks)).prefixed(
        backbone_path)


def output_modules(model: nn.Module, backbone_path: str = 'backbone') -> List[str]:
    """Paths (model relative) of the backbone's output-only modules."""
    backbone = model.get_submodule(backbone_path)
    for cls in type(backbone).__mro__:
        prefix = OUTPUT_NORMS.get(cls.__name__)
        if prefix is not None:
            return [f'{backbone_path}.{n}' for n, _ in backbone.named_children()
                    if n.startswith(prefix) and n[len(prefix):].isdigit()]
    return []
