"""InfoPro (Wang et al., ICLR 2021; ALGORITHMS.md §2): each local module's
head is lambda1 x reconstruction (decoder w, BCE) + lambda2 x task loss
(psi), lambda = a (1 - r) + b r over the module's position r. The weights
(a, b) differ per paper, dataset and K (§2.2): the fragments that inherit
this one, or the config, set ``recon_weights`` and ``task_weights``."""
_base_ = './wrapper.py'

local_learning = dict(local=dict(method=dict(type='InfoPro')))
