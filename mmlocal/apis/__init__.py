"""What the tools share: building a config's model, a batch, measuring
steps, the toolboxes' differences, CPU distributed launches, checkpoints."""
from .benchmark import (benchmark_configs, count_flops, head_peak_memory,
                        machine_info, markdown_table, measure_step,
                        pick_reference, summarize, unique_names)
from .builder import (build_model, build_model_and_optim_wrapper,
                      init_config_scope, load_config)
from .checkpoint import (LOCAL_LEARNER_KEY, LOCAL_LEARNER_PREFIX,
                         local_learner_keys, strip_local_learner)
from .data import fit_preprocessor_size, input_size_of, real_batch, synthetic_batch
from .distributed import (close_distributed, init_cpu_distributed,
                          replace_sync_bn, setup_cpu_distributed)
from .hooks import DropLocalLearnerHook
from .options import (check_amp_available, enable_amp, enable_auto_scale_lr, enable_dump, enable_tta,
                      enable_visualization, set_default_collate)
from .runner import build_runner
from .speed import (OpCounter, StepCount, benchmark_speed, count_step, parse_spec,
                    run_iteration, runner_mode, speed_table)
from .toolboxes import DetToolbox, PretrainToolbox, SegToolbox, Toolbox, get_toolbox

__all__ = [
    'benchmark_configs', 'count_flops', 'head_peak_memory', 'machine_info',
    'markdown_table', 'measure_step', 'pick_reference', 'summarize',
    'unique_names', 'build_model', 'build_model_and_optim_wrapper',
    'init_config_scope', 'load_config', 'LOCAL_LEARNER_KEY',
    'LOCAL_LEARNER_PREFIX', 'local_learner_keys', 'strip_local_learner',
    'fit_preprocessor_size', 'input_size_of', 'real_batch', 'synthetic_batch',
    'close_distributed', 'init_cpu_distributed', 'replace_sync_bn',
    'setup_cpu_distributed', 'DropLocalLearnerHook', 'check_amp_available', 'enable_amp',
    'enable_auto_scale_lr', 'enable_dump', 'enable_tta', 'enable_visualization',
    'set_default_collate', 'build_runner', 'DetToolbox', 'PretrainToolbox',
    'SegToolbox', 'Toolbox', 'get_toolbox', 'OpCounter', 'StepCount', 'benchmark_speed',
    'count_step', 'parse_spec', 'run_iteration', 'runner_mode', 'speed_table'
]
