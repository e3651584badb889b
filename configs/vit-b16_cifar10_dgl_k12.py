"""ViT-B/16 CIFAR-10, DGL K=12 (HPFF supplement Table 2: 61.48% accuracy,
2.69 GB vs 5.43 GB E2E): one encoder layer per local module (inferred; no
public code), boundaries after backbone.layers.0 ... layers.10.

psi is a light token head chosen by mmlocal (inferred: LayerNorm, average
pooling of the patch tokens, 2-layer MLP). No public code gives HPFF's ViT
head; ALGORITHMS.md §1.5 notes only that MLAAN's deleted auxDGL head accepts
pooled 768-d tokens. The memory the paper reports leaves room for no more.
InfoPro's ViT psi (3x3 conv stride 2 + 3 Transformer layers) is
classifier=dict(type='ViTAuxClassifier').
"""
_base_ = ['./vit-b16_cifar10_e2e.py', './_base_/local/dgl.py']

optim_wrapper = _base_.pop('local_learning')
optim_wrapper.local.update(num_modules=12)
optim_wrapper.local.method.classifier = dict(type='TokenMLPClassifier')
