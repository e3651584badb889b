from .aux_classifiers import (AuxDGLClassifier, AuxNet34Classifier, ConvAuxClassifier,
                              DGLMLPSRClassifier, ImageNetAuxClassifier, PredSimNet,
                              SegAuxClassifier)
from .decoders import (HPFFImageNetDecoder, QuadrantReconDecoder, ReconDecoder,
                       UpsampleDecoder)
from .local_heads import ClassifierHead, InfoProHead, LocalHead, PredSimHead

__all__ = [
    'AuxDGLClassifier', 'AuxNet34Classifier', 'HPFFImageNetDecoder', 'QuadrantReconDecoder',
    'ConvAuxClassifier', 'DGLMLPSRClassifier', 'ImageNetAuxClassifier',
    'PredSimNet', 'SegAuxClassifier', 'ReconDecoder', 'UpsampleDecoder',
    'LocalHead', 'ClassifierHead', 'InfoProHead', 'PredSimHead'
]
from .leap_head import LeapAugmentedHead  # noqa: E402

__all__ += ['LeapAugmentedHead']
from .vit_heads import PatchReconDecoder, TokenMLPClassifier, ViTAuxClassifier  # noqa: E402

__all__ += ['ViTAuxClassifier', 'TokenMLPClassifier', 'PatchReconDecoder']
from .det_heads import DetClassifierHead, DetInfoProHead  # noqa: E402

__all__ += ['DetClassifierHead', 'DetInfoProHead']
