"""Analysis of local-learning runs, above the runtime: the peak memory of a
training step per local module and the splits that balance it
(``split='memory'``) or fit a budget (``local.memory_budget``)."""
from .batch import synthetic_training_batch, training_input_size
from .peaks import (BudgetFit, PeakCosts, compare_splits, fewest_modules_within,
                    measure_peak_costs, module_peaks, optimizer_state_ratio,
                    peak_balanced_indices, predicted_peak, resolve_measured_split,
                    run_planned_head)

__all__ = [
    'synthetic_training_batch', 'training_input_size', 'BudgetFit', 'PeakCosts',
    'compare_splits', 'fewest_modules_within', 'run_planned_head', 'measure_peak_costs', 'module_peaks', 'optimizer_state_ratio',
    'peak_balanced_indices', 'predicted_peak', 'resolve_measured_split'
]
