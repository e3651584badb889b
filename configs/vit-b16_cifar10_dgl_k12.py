"""ViT-B/16 CIFAR-10, DGL K=12 (HPFF supplement Table 2: 61.48% accuracy,
2.69 GB vs 5.43 GB E2E): one encoder layer per local module (inferred; no
public code), boundaries after backbone.layers.0 ... layers.10.

psi is the light token head (LayerNorm, average pooling of the patch tokens,
2-layer MLP), the DGL-style head MLAAN's code applies to pooled ViT-B tokens
(ALGORITHMS.md §1.5); the memory the paper reports leaves room for no more.
InfoPro's ViT psi (3x3 conv stride 2 + 3 Transformer layers) is
classifier=dict(type='ViTAuxClassifier').
"""
_base_ = './vit-b16_cifar10_e2e.py'

optim_wrapper = dict(
    type='LocalLearningOptimWrapper',
    constructor='LocalLearningOptimWrapperConstructor',
    local=dict(
        num_modules=12,
        method=dict(type='DGL', classifier=dict(type='TokenMLPClassifier')),
    ))
