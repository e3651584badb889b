"""Analysis of local-learning runs, above the runtime: the peak memory of a
training step per local module (``peaks.py``), the splits that balance it or
fit a budget (``split_search.py``, which registers ``split='memory'``), and
their use when the optim wrapper is built (``memory_split.py``)."""
from .batch import synthetic_training_batch, training_input_size
from .flops import local_head_flops
from .memory_split import resolve_measured_split
from .peaks import (PeakCosts, candidate_plan, measure_peak_costs, module_peaks,
                    optimizer_state_ratio, predicted_peak)
from .split_search import (BudgetFit, compare_splits, fewest_modules_within,
                           peak_balanced_indices)

__all__ = [
    'synthetic_training_batch', 'training_input_size', 'local_head_flops',
    'resolve_measured_split', 'PeakCosts',
    'measure_peak_costs', 'module_peaks', 'optimizer_state_ratio', 'predicted_peak',
    'candidate_plan', 'BudgetFit', 'compare_splits', 'fewest_modules_within',
    'peak_balanced_indices'
]
