"""mmlocal/testing/zoo.py: the sweep's perturbation check of isolation passes
on a model the engine isolates and reports a real leak, a module-1 parameter
that the task loss also uses, added after the first step's isolation check
by construction has run (the case this independent check exists for)."""
import copy

import mmlocal  # noqa: F401
import pytest
import torch
from mmengine.optim import build_optim_wrapper

from mmlocal.apis.builder import init_config_scope
from mmlocal.local import LocalLearner
from mmlocal.testing import local_step_grads
from mmlocal.testing.zoo import (DEFAULT_SIZE, ZOO_CASES, build_zoo_model, first_and_last,
                                 perturbed_train_step, real_batch, torch_threads,
                                 zoo_config)

CASE = next(c for c in ZOO_CASES if 'mobilenet-v3-small' in c.config)  # the cheapest


@pytest.fixture(autouse=True)
def one_thread():
    """As the sweep runs its cases (tiny inputs)."""
    with torch_threads(1):
        yield


def _one_local_step():
    """MobileNetV3-S from mmpretrain's zoo with ``num_modules=4``, after its
    first local step (the isolation check by construction ran and passed):
    the model, wrapper, batch, the step's gradients and module 1's and the
    last module's parameter names."""
    cfg = zoo_config(CASE)
    init_config_scope(cfg)
    model = build_zoo_model(cfg)
    ow = copy.deepcopy(cfg.optim_wrapper)
    ow.update(constructor='LocalLearningOptimWrapperConstructor', local=dict(CASE.local))
    wrapper = build_optim_wrapper(model, ow)
    learner = LocalLearner.of(model)
    assert learner.num_modules == 4
    raw = real_batch('mmpretrain', 2, DEFAULT_SIZE['mmpretrain'])
    torch.manual_seed(0)
    reference = local_step_grads(model, wrapper, model.data_preprocessor(copy.deepcopy(raw), True))
    assert learner.isolation.done
    first, last = first_and_last(model, learner.boundaries)
    assert first and last and not set(first) & set(last)
    return model, wrapper, raw, reference, first, last


def test_isolated_model_passes_with_the_control():
    checks = perturbed_train_step(*_one_local_step())
    assert checks == dict(isolation='', train_step=''), checks


def test_a_module_1_parameter_used_by_the_task_loss_is_reported():
    model, wrapper, raw, reference, first, last = _one_local_step()
    shared = dict(model.named_parameters())[first[0]]
    # the neck's output also reads a module-1 parameter: the task loss's
    # gradient reaches module 1 and depends on the last module's weights
    model.neck.register_forward_hook(
        lambda m, args, out: tuple(o + 1e-2 * shared.sum() * o.mean() for o in out))
    checks = perturbed_train_step(model, wrapper, raw, reference, first, last)
    assert checks['isolation'].startswith('module 1 gradient changes with the last module'), \
        checks
