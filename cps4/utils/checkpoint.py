"""Safe checkpoint loading under torch's ``weights_only`` default.

Since torch 2.6 ``torch.load`` only unpickles tensors, containers and an
explicit allow-list of globals. mmengine checkpoints also carry the
``MessageHub`` state (``HistoryBuffer`` objects holding numpy arrays and
numpy scalars), so ``--resume`` fails out of the box. Rather than turning
``weights_only`` off, which would let a checkpoint run arbitrary code, we

1. allow exactly the few classes and constructors such checkpoints need
   (:data:`SAFE_GLOBALS`), and
2. make ``HistoryBuffer`` pickle through its constructor: its default
   pickled state includes bound statistics methods, which can only be
   rebuilt with ``builtins.getattr``, a global that must never be allowed.
"""
import numpy as np
import torch
from mmengine.logging import HistoryBuffer

try:  # numpy >= 2
    from numpy._core import multiarray as _multiarray
except ImportError:  # pragma: no cover - numpy 1.x
    from numpy.core import multiarray as _multiarray


def _reduce_history_buffer(self):
    return (HistoryBuffer, (list(self._log_history), list(self._count_history),
                            self.max_length))


#: Globals (besides torch's own) that CPS4 checkpoints may reference.
SAFE_GLOBALS = [
    HistoryBuffer,
    np.ndarray,
    np.dtype,
    _multiarray._reconstruct,
    _multiarray.scalar,
    # dtype classes that numpy arrays and scalars are rebuilt with
    *(type(np.dtype(t)) for t in (np.bool_, np.int8, np.int16, np.int32,
                                  np.int64, np.uint8, np.uint16, np.uint32,
                                  np.uint64, np.float16, np.float32,
                                  np.float64)),
]


def register_safe_globals() -> None:
    """Allow :data:`SAFE_GLOBALS` in ``torch.load`` and fix buffer pickling.

    Idempotent; called when :mod:`cps4` is imported, i.e. by every config
    through ``custom_imports``.
    """
    HistoryBuffer.__reduce__ = _reduce_history_buffer
    torch.serialization.add_safe_globals(SAFE_GLOBALS)
