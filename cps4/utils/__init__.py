from .atomic_file import atomic_file, save_figure
from .atomic_local_backend import AtomicLocalBackend
from .checkpoint import (SAFE_GLOBALS, CorruptCheckpointError,
                         UnsafeCheckpointError, load_local_checkpoint,
                         register_safe_globals)
from .launch import (explain_registry_error, explained_registry_errors,
                     init_cpu_dist)
from .precision import (disable_mixed_precision, enable_channels_last,
                        enable_mixed_precision, memory_format_of)

__all__ = [
    'atomic_file', 'save_figure', 'AtomicLocalBackend', 'SAFE_GLOBALS',
    'CorruptCheckpointError', 'UnsafeCheckpointError', 'load_local_checkpoint',
    'register_safe_globals', 'init_cpu_dist', 'explain_registry_error',
    'explained_registry_errors', 'disable_mixed_precision',
    'enable_channels_last', 'enable_mixed_precision', 'memory_format_of'
]
