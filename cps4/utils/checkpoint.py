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
   rebuilt with ``builtins.getattr``, a global that must never be allowed,
3. replace mmengine's loader of local files (used by ``--resume``,
   ``load_from``, ``load_checkpoint``, hence by the stage-1 VLM of stage 2
   and by ``tools/infer.py``) with :func:`load_local_checkpoint`, which
   passes ``weights_only=True`` explicitly (an environment variable cannot
   turn it off) and turns a refused or unreadable file into an error that
   names it.
"""
import os.path as osp
import pickle
import zipfile

import numpy as np
import torch
from mmengine.logging import HistoryBuffer
from mmengine.runner.checkpoint import CheckpointLoader

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


class UnsafeCheckpointError(pickle.UnpicklingError):
    """A checkpoint references a Python global outside the allow-list."""


class CorruptCheckpointError(RuntimeError):
    """A checkpoint file is truncated or not a checkpoint."""


def load_local_checkpoint(filename: str, map_location=None) -> dict:
    """Load a local checkpoint with ``weights_only=True``.

    Args:
        filename (str): The ``.pth`` file.
        map_location: As for :func:`torch.load`.

    Returns:
        dict: The checkpoint.

    Raises:
        FileNotFoundError: No such file.
        UnsafeCheckpointError: The file holds a pickled object that is not
            a tensor, a container or one of :data:`SAFE_GLOBALS` (it could
            run code when loaded); nothing of it is executed.
        CorruptCheckpointError: The file is truncated or not a checkpoint.
    """
    filename = osp.expanduser(filename)
    if not osp.isfile(filename):
        raise FileNotFoundError(f'{filename} can not be found.')
    try:
        return torch.load(filename, map_location=map_location,
                          weights_only=True)
    except pickle.UnpicklingError as exc:
        detail = str(exc).strip().splitlines()
        unsafe = [ln for ln in detail if 'GLOBAL' in ln or 'global' in ln]
        raise UnsafeCheckpointError(
            f'{filename}: refused to load: it holds a pickled Python object '
            f'outside the allow-list ({(unsafe or detail or ["?"])[0]}). '
            'Loading it could run arbitrary code. Only load checkpoints '
            'from sources you trust; if this one is yours and carries a new '
            'type, add that type to cps4.utils.checkpoint.SAFE_GLOBALS.'
        ) from exc
    except (EOFError, zipfile.BadZipFile, RuntimeError, ValueError) as exc:
        raise CorruptCheckpointError(
            f'{filename}: cannot read the checkpoint ({type(exc).__name__}: '
            f'{str(exc).strip().splitlines()[0] if str(exc).strip() else ""}'
            '); the file is truncated or not a torch checkpoint. Use an '
            'earlier checkpoint of the run (see last_checkpoint in its work '
            'dir).') from exc


def register_safe_globals() -> None:
    """Allow :data:`SAFE_GLOBALS` in ``torch.load``, fix buffer pickling and
    route mmengine's local checkpoint loading through
    :func:`load_local_checkpoint`.

    Idempotent; called when :mod:`cps4` is imported, i.e. by every config
    through ``custom_imports``.
    """
    HistoryBuffer.__reduce__ = _reduce_history_buffer
    torch.serialization.add_safe_globals(SAFE_GLOBALS)
    CheckpointLoader.register_scheme(prefixes='', loader=load_local_checkpoint,
                                     force=True)
