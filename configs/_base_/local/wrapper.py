"""The local-learning optim wrapper: what every local config adds to its E2E
config's ``optim_wrapper`` (the optimizer, clipping and ``paramwise_cfg``
stay the E2E config's).

Fragments of ``configs/_base_/local/`` are consumed, not inherited as
``optim_wrapper``: mmengine refuses one top-level key in two bases, and the
E2E base already has ``optim_wrapper``. A config lists the fragment beside
its E2E base and takes it with ``_base_.pop(...)``, so the resolved config
holds no helper key::

    _base_ = ['./resnet32_cifar10_e2e.py', './_base_/local/dgl_cifar.py']
    optim_wrapper = _base_.pop('local_learning')
    optim_wrapper.local.update(num_modules=16)

``local_learning`` (this file and the method fragments that inherit it) is
the ``optim_wrapper`` delta; ``local_hilo`` (``hilo.py`` and its children)
holds keys of ``local`` and is merged with ``local.update(...)``.
"""
local_learning = dict(
    type='LocalLearningOptimWrapper',
    constructor='LocalLearningOptimWrapperConstructor',
    local=dict())
