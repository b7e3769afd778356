from .atomic_file import atomic_dir, atomic_file, save_figure
from .atomic_local_backend import AtomicLocalBackend
from .checkpoint import (SAFE_GLOBALS, CheckpointMismatchError,
                         CorruptCheckpointError, UnsafeCheckpointError,
                         check_checkpoint_fits, checkpoint_summary,
                         load_local_checkpoint, logged_val_scores,
                         register_safe_globals, training_checkpoints)
from .launch import (close_dist, explain_registry_error,
                     explained_registry_errors, init_cpu_dist,
                     merge_cfg_options)
from .precision import (disable_mixed_precision, enable_channels_last,
                        enable_mixed_precision, memory_format_of)

__all__ = [
    'atomic_dir', 'atomic_file', 'save_figure', 'AtomicLocalBackend',
    'SAFE_GLOBALS', 'CheckpointMismatchError', 'CorruptCheckpointError',
    'UnsafeCheckpointError', 'check_checkpoint_fits', 'checkpoint_summary',
    'load_local_checkpoint', 'logged_val_scores', 'register_safe_globals',
    'training_checkpoints', 'init_cpu_dist', 'close_dist',
    'explain_registry_error', 'explained_registry_errors',
    'merge_cfg_options', 'disable_mixed_precision', 'enable_channels_last',
    'enable_mixed_precision', 'memory_format_of'
]
