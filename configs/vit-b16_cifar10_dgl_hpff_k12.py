"""ViT-B/16 CIFAR-10, DGL + HPFF K=12 (HPFF supplement Table 2: 74.65%
accuracy, 2.64 GB): the DGL K=12 config with HiLo and PFF as the HPFF paper
defines them (ALGORITHMS.md §5.1; no ViT code is public, §0): an independent
head on every module (weight 0.001), cascade heads over windows of 2 modules
(0.999, the weights of the CIFAR code, §5.2), and the paper's PFF (the same
head on 2x2 patches of the 14x14 token grid, predictions averaged).
"""
_base_ = ['./vit-b16_cifar10_dgl_k12.py', './_base_/local/hpff.py']

optim_wrapper = dict(local=_base_.pop('local_hilo'))
