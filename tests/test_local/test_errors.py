"""Wrong configs fail at build time with a message naming the fix."""
import math

import pytest
import torch

from mmlocal.testing import build_classifier, build_local, cifar_batch
from mmlocal.local import LocalLearner


def test_k_larger_than_blocks():
    model = build_classifier(depth=20)  # stem + 9 blocks -> K <= 10
    with pytest.raises(ValueError, match='K must be between 1 and 10'):
        build_local(model, dict(num_modules=11, method=dict(type='DGL')))


def test_unknown_boundary():
    model = build_classifier(depth=20)
    with pytest.raises(ValueError, match="unknown boundary 'backbone.layer9.0'"):
        build_local(model, dict(boundaries=['backbone.layer9.0'], method=dict(type='DGL')))


def test_boundaries_out_of_order():
    model = build_classifier(depth=20)
    with pytest.raises(ValueError, match='execution order'):
        build_local(model, dict(boundaries=['layer2.0', 'layer1.0'], method=dict(type='DGL')))


def test_unknown_method():
    model = build_classifier(depth=20)
    with pytest.raises(ValueError, match="'Backprop' is not a local method.*DGL"):
        build_local(model, dict(num_modules=2, method=dict(type='Backprop')))


def test_unknown_split():
    model = build_classifier(depth=20)
    with pytest.raises(ValueError, match="unknown split 'even'"):
        build_local(model, dict(num_modules=2, split='even', method=dict(type='DGL')))


def test_head_that_does_not_fit():
    model = build_classifier(depth=20)
    with pytest.raises(ValueError, match="unknown auxiliary classifier arch '3c3f'"):
        build_local(model, dict(num_modules=2, method=dict(
            type='DGL', classifier=dict(type='ConvAuxClassifier', arch='3c3f'))))


def test_patch_grid_larger_than_feature():
    model = build_classifier(depth=20)  # last stage map is 8x8 for 32x32 inputs
    with pytest.raises(ValueError, match='PFF patch grid 9x9 is larger than the 8x8'):
        build_local(model, dict(num_modules=8, method=dict(type='DGL'), pff=dict(patches=9),
                                probe_size=(32, 32)))


def test_local_without_constructor():
    from mmengine.optim import build_optim_wrapper
    model = build_classifier(depth=20)
    with pytest.raises(ValueError, match="constructor='LocalLearningOptimWrapperConstructor'"):
        build_optim_wrapper(model, dict(type='LocalLearningOptimWrapper',
                                        optimizer=dict(type='SGD', lr=0.1),
                                        local=dict(num_modules=2)))


def test_amp_needs_cuda():
    if torch.cuda.is_available():
        pytest.skip('has a GPU')
    from mmengine.optim import build_optim_wrapper
    model = build_classifier(depth=20)
    with pytest.raises(RuntimeError, match='needs a CUDA GPU'):
        build_optim_wrapper(model, dict(type='AmpOptimWrapper',
                                        constructor='LocalLearningOptimWrapperConstructor',
                                        optimizer=dict(type='SGD', lr=0.1),
                                        local=dict(num_modules=2)))


def _nan_head(model, name='m2'):
    with torch.no_grad():
        LocalLearner.of(model).heads[name].classifier.fcs[-1].weight.fill_(math.nan)


def test_nan_local_loss_names_the_module():
    """Without LocalLossHook the optim wrapper reads the losses at the end of
    the step: training stops there, naming the loss, module and boundary."""
    model = build_classifier(depth=20)
    wrapper = build_local(model, dict(num_modules=4, method=dict(type='DGL'),
                                      probe_size=(32, 32)))
    _nan_head(model)
    with pytest.raises(FloatingPointError,
                       match=r'local loss local.m2.loss_cls is nan at module m2 '
                             r'\(backbone.layer2.0\)'):
        model.train_step(cifar_batch(8), wrapper)


def test_nan_local_loss_read_after_the_step():
    """Read by the hook (deferred): the step itself does not stop, the read
    after it does; a step whose losses nobody read is read at the next one."""
    model = build_classifier(depth=20)
    wrapper = build_local(model, dict(num_modules=4, method=dict(type='DGL'),
                                      probe_size=(32, 32)))
    wrapper.defer_local_losses(True)
    _nan_head(model, 'm3')
    model.train_step(cifar_batch(8), wrapper)  # no read inside the step
    losses = wrapper.pop_local_losses()
    with pytest.raises(FloatingPointError, match='local loss local.m3.loss_cls is nan at module m3'):
        losses.read()
    model.train_step(cifar_batch(8), wrapper)  # unread ...
    with pytest.raises(FloatingPointError, match='local.m3.loss_cls is nan'):
        model.train_step(cifar_batch(8), wrapper)  # ... read here


def test_check_finite_off_still_logs():
    from mmengine.logging import MessageHub
    model = build_classifier(depth=20)
    wrapper = build_local(model, dict(num_modules=4, method=dict(type='DGL'),
                                      probe_size=(32, 32), check_finite=False))
    _nan_head(model)
    model.train_step(cifar_batch(8), wrapper)
    assert math.isnan(MessageHub.get_current_instance().get_scalar(
        'train/local.m2.loss_cls').current())
