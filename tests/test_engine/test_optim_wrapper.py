"""The local optim wrapper's constructor: the multi-tensor optimizer path by
default (fewer ops for many small head tensors), with updates bit for bit
those of torch's per-tensor loop."""
import torch
from mmengine.optim import build_optim_wrapper

from mmlocal.testing import build_classifier, cifar_batch


def _train(foreach):
    torch.manual_seed(0)
    model = build_classifier(depth=20)
    optimizer = dict(type='SGD', lr=0.1, momentum=0.9, nesterov=True, weight_decay=5e-4)
    if foreach is not None:
        optimizer['foreach'] = foreach
    wrapper = build_optim_wrapper(model, dict(
        type='LocalLearningOptimWrapper', constructor='LocalLearningOptimWrapperConstructor',
        optimizer=optimizer, local=dict(num_modules=4, method=dict(type='InfoPro'),
                                        probe_size=(32, 32))))
    for i in range(2):
        model.train_step(cifar_batch(8, seed=i), wrapper)
    tensors = list(model.parameters()) + list(wrapper.learner.parameters())
    return wrapper, [t.detach().clone() for t in tensors]


def test_foreach_by_default_and_bitwise_equal_to_the_loop():
    default, got = _train(None)
    assert default.optimizer.defaults['foreach'] is True
    loop, want = _train(False)  # an explicit setting is kept
    assert loop.optimizer.defaults['foreach'] is False
    assert all(torch.equal(a, b) for a, b in zip(got, want))
