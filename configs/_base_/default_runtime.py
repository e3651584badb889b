# mmpretrain's runtime (default_scope 'mmpretrain', hooks, visualizer) with
# logging and checkpointing sized for CIFAR-style runs: ~50 iterations per
# epoch at batch 1024, hundreds of epochs.
_base_ = 'mmpretrain::_base_/default_runtime.py'

default_hooks = dict(
    logger=dict(type='LoggerHook', interval=10),
    checkpoint=dict(
        type='CheckpointHook', interval=10, max_keep_ckpts=3,
        save_best='auto'),
)

# Checkpoints carry the random-number states, and data workers are seeded by
# (seed, epoch, rank): a resumed run draws what the straight run draws.
# Local losses are read, checked for NaN/Inf and logged once per iteration,
# outside the training step (no host sync per loss); a no-op for E2E.
custom_hooks = [dict(type='RandomStateHook'), dict(type='LocalLossHook')]
