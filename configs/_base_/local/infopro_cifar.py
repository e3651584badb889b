"""InfoPro (softmax) as HPFF's and MLAAN's CIFAR code run it (their READMEs,
ALGORITHMS.md §2.2 last paragraph): lambda1 = 5 (1 - r), lambda2 = 0.5 (1 - r),
cross-entropy, psi 1c2f and InfoPro's CIFAR decoder (the method's defaults).
InfoPro's own ``comand.sh`` values differ per dataset and K (§2.2): those
configs set ``method`` themselves."""
_base_ = './infopro.py'

local_learning = dict(
    local=dict(
        method=dict(type='InfoPro', recon_weights=(5., 0.), task_weights=(0.5, 0.))))
