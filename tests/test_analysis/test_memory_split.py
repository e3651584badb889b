"""split='memory' and local.memory_budget when the optim wrapper is built:
the measured split, the smallest K within a budget (its real step peak under
the CPU tracker), refusals and the config keys."""
import re

import pytest
import torch

from mmlocal.analysis import measure_peak_costs, peak_balanced_indices, predicted_peak
from mmlocal.local import LocalLearner, build_learner
from mmlocal.local.config import LocalConfig, LocalConfigError
from mmlocal.local.split import block_paths, resolve_boundaries
from mmlocal.testing import build_classifier, build_local, cifar_batch, step_peak
from mmlocal.utils.memory import MB

MEMORY_BATCH = dict(batch_size=32, input_size=(32, 32))


def test_split_memory_is_measured_at_build_time():
    """split='memory' through the constructor: a split of the step measured
    at memory_batch (its real peak against equal blocks: test_peaks.py),
    which draws no random numbers (the heads equal those built from the
    printed boundaries)."""
    local = dict(num_modules=3, split='memory', method=dict(type='DGL'),
                 memory_batch=MEMORY_BATCH)
    model = build_classifier(depth=20)
    torch.manual_seed(1)
    build_local(model, local)
    learner = LocalLearner.of(model)
    chosen = learner.boundaries
    heads = {k: v.clone() for k, v in learner.state_dict().items()}
    learner.remove()
    paths = block_paths(model)
    assert len(chosen) == 2
    # early blocks hold 4x the activations of the last stage's: the measured
    # split cuts earlier than equal blocks
    blocks = resolve_boundaries(model, 3, split='blocks')
    assert [paths.index(b) for b in chosen] < [paths.index(b) for b in blocks]

    torch.manual_seed(1)
    build_local(model, dict(boundaries=chosen, method=dict(type='DGL')))
    again = LocalLearner.of(model).state_dict()
    LocalLearner.of(model).remove()
    assert heads.keys() == again.keys()
    assert all(torch.equal(heads[k], again[k]) for k in heads)



def test_memory_budget_picks_the_smallest_k_that_fits():
    """A budget of 70% of E2E's real peak: the chosen split's real step
    peak (parameters, heads and SGD momentum included) is within it, and one
    module fewer is predicted not to fit."""
    batch = cifar_batch(MEMORY_BATCH['batch_size'])
    method = dict(type='DGL')
    model = build_classifier(depth=20)
    e2e, _ = step_peak(model, batch, dict(num_modules=1, method=method))
    budget = int(0.7 * e2e)
    real, chosen = step_peak(model, batch, dict(memory_budget=budget, memory_batch=MEMORY_BATCH,
                                                method=method))
    k = len(chosen) + 1
    assert k > 1
    assert real <= budget * 1.05, (real / MB, budget / MB)
    # the prediction for K-1 modules is above the budget
    data = model.data_preprocessor(batch, True)
    costs = measure_peak_costs(model, data['inputs'], data['data_samples'],
                               dict(method=method), optimizer_state=1.)
    if k > 2:
        ends = peak_balanced_indices(costs, k - 1) + [len(costs.paths) - 1]
        assert predicted_peak(costs, ends) > budget


def test_memory_budget_refused_with_the_lowest_peak():
    model = build_classifier(depth=20)
    with pytest.raises(LocalConfigError, match='memory_budget=1.0 MB cannot be met') as err:
        build_local(model, dict(memory_budget='1MB', memory_batch=MEMORY_BATCH,
                                 method=dict(type='DGL')))
    lowest = float(re.search(r'lowest predicted peak of any split is ([\d.]+) MB',
                             str(err.value)).group(1))
    # parameters alone (with their momentum) are above 1 MB, the answer above them
    params = sum(p.numel() * p.element_size() for p in model.parameters()) / MB
    assert lowest > 2 * params and 'Raise the budget' in str(err.value)


def test_measured_splits_need_their_batch():
    model = build_classifier(depth=20)
    with pytest.raises(LocalConfigError, match=r'memory_batch=dict\(batch_size='):
        build_local(model, dict(num_modules=3, split='memory'))
    with pytest.raises(ValueError, match="split='activations'"):
        build_learner(model, dict(num_modules=3, split='memory'))  # no constructor: no step


@pytest.mark.parametrize('local, match', [
    (dict(memory_budget='20GB', num_modules=4), 'drop num_modules'),
    (dict(memory_budget=2**30, split='blocks'), "takes split='memory'"),
    (dict(memory_budget='twenty GB'), "size like '20GB'"),
    (dict(memory_budget=-5), 'must be >= 1'),
    (dict(memory_batch=dict(input_size=(32, 32))), 'batch_size is required'),
    (dict(memory_batch=dict(batch_size=2, input_size=32)), r'must be \(H, W\)'),
    (dict(memory_batch=dict(batch=2)), "Did you mean 'batch_size'"),
])
def test_memory_keys_are_checked(local, match):
    with pytest.raises(LocalConfigError, match=match):
        LocalConfig.parse(local)


def test_memory_budget_units():
    assert LocalConfig.parse(dict(memory_budget='20GB')).memory_budget == 20 * 2**30
    assert LocalConfig.parse(dict(memory_budget='512 MiB')).memory_budget == 512 * 2**20
    assert LocalConfig.parse(dict(memory_budget='1.5g')).memory_budget == int(1.5 * 2**30)
    assert LocalConfig.parse(dict(memory_budget=1000)).memory_budget == 1000
    assert LocalConfig.parse(dict(memory_budget='1MB')).split == 'memory'
