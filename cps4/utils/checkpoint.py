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
import glob
import json
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


class CheckpointMismatchError(ValueError):
    """A checkpoint's weights do not fit the model of the config."""


def check_checkpoint_fits(model: torch.nn.Module, filename: str) -> None:
    """Load a checkpoint into ``model``, refusing one that does not fit.

    mmengine loads weights non-strictly: a checkpoint of another head (6
    classes for a 20-class config) or another backbone loads with a
    warning and the rest of the model stays randomly initialised. A test
    or an inference must not run on such a model. The weights go through
    the model's own loading hooks, so what a model accepts on purpose (a
    single-network checkpoint in a teacher-student segmentor) still fits.

    Args:
        model (torch.nn.Module): The model built from the config (a model
            wrapper is unwrapped); it holds the checkpoint's weights after a
            successful call.
        filename (str): The checkpoint file.

    Raises:
        CheckpointMismatchError: Keys missing from the checkpoint, keys the
            model does not have, or tensors of another shape; the message
            names them.
        FileNotFoundError, CorruptCheckpointError, UnsafeCheckpointError:
            From :func:`load_local_checkpoint`.
    """
    from mmengine.model import is_model_wrapper
    if is_model_wrapper(model):
        model = model.module
    ckpt = load_local_checkpoint(filename, map_location='cpu')
    state = ckpt.get('state_dict', ckpt) if isinstance(ckpt, dict) else {}
    state = {(k[len('module.'):] if k.startswith('module.') else k): v
             for k, v in state.items()}
    own = model.state_dict()
    shapes = sorted(
        f'{k} {list(state[k].shape)} in the checkpoint, '
        f'{list(own[k].shape)} in the model' for k in set(own) & set(state)
        if hasattr(state[k], 'shape') and state[k].shape != own[k].shape)
    missing, unexpected = [], []
    if not shapes:
        try:
            result = model.load_state_dict(state, strict=False)
            missing = sorted(result.missing_keys)
            unexpected = sorted(result.unexpected_keys)
        except RuntimeError as exc:  # a shape the hooks renamed into
            shapes = [ln.strip() for ln in str(exc).splitlines()
                      if 'size mismatch' in ln] or [str(exc)]
    if not (missing or unexpected or shapes):
        return
    parts = []
    for what, keys in (('other shapes', shapes), ('missing', missing),
                       ('not in the model', unexpected)):
        if keys:
            more = f' and {len(keys) - 5} more' if len(keys) > 5 else ''
            parts.append(f'{what}: {"; ".join(keys[:5])}{more}')
    raise CheckpointMismatchError(
        f'{filename}: its weights do not fit the model of the config '
        f'({" | ".join(parts)}); check that the checkpoint was trained with '
        'this config (number of classes, backbone)')


def training_checkpoints(work_dir: str) -> dict:
    """The last and the best-on-val checkpoint of a training work dir.

    The last is the file ``work_dir/last_checkpoint`` names (looked up in
    ``work_dir`` by its base name, so a work dir that was moved or trained
    from another directory still resolves); the best is the single
    ``best_*.pth`` mmengine's ``CheckpointHook`` keeps with ``save_best``
    (val cases only).

    Args:
        work_dir (str): The ``--work-dir`` of a ``tools/train.py`` run.

    Returns:
        dict: ``last`` and ``best`` (None when the run kept no best
        checkpoint, e.g. ``save_best=None``), each the path of a file.

    Raises:
        FileNotFoundError: ``work_dir`` holds no ``last_checkpoint``, or it
            names a file that is not there.
        ValueError: Several ``best_*.pth`` files (of several
            ``save_best`` metrics); the message names them.
    """
    pointer = osp.join(work_dir, 'last_checkpoint')
    if not osp.isfile(pointer):
        raise FileNotFoundError(
            f'{work_dir} holds no last_checkpoint (not the work dir of a '
            'training run?); pass a checkpoint file instead')
    with open(pointer) as f:
        named = f.read().strip()
    last = osp.join(work_dir, osp.basename(named))
    if not osp.isfile(last):
        raise FileNotFoundError(
            f'{pointer} names {named}, which is not in {work_dir}')
    best = sorted(glob.glob(osp.join(work_dir, 'best_*.pth')))
    if len(best) > 1:
        raise ValueError(
            f'{work_dir} holds several best checkpoints '
            f'({", ".join(osp.basename(b) for b in best)}); pass one file')
    return dict(last=last, best=best[0] if best else None)


def checkpoint_summary(filename: str) -> dict:
    """When a checkpoint was saved and the best val score known then.

    Returns:
        dict: ``iter`` (the training iteration, from its ``meta``) and
        ``best_score`` (the ``save_best`` metric of the best checkpoint so
        far, from its message hub; None when the run kept no best).

    Raises:
        KeyError: The checkpoint records no iteration (not written by a
            training run).
    """
    ckpt = load_local_checkpoint(filename, map_location='cpu')
    meta = ckpt.get('meta', {}) if isinstance(ckpt, dict) else {}
    if 'iter' not in meta:
        raise KeyError(f'{filename} records no iteration in its meta')
    hub = ckpt.get('message_hub') or {}
    info = hub.get('runtime_info', {}) if isinstance(hub, dict) else {}
    score = info.get('best_score')
    return dict(iter=int(meta['iter']),
                best_score=None if score is None else float(score))


def logged_val_scores(work_dir: str, key: str = 'mDice') -> dict:
    """The val scores a training run logged, by iteration.

    Read from mmengine's ``<timestamp>/vis_data/scalars.json`` files of
    ``work_dir`` (oldest first, so a resumed run's later records win).

    Args:
        work_dir (str): The work dir of the training run.
        key (str): The metric. Defaults to ``mDice`` (for a teacher-student
            model, that of the network it is tested with).

    Returns:
        dict: ``{iteration: score}``; empty when nothing was logged.
    """
    scores = {}
    for path in sorted(glob.glob(osp.join(work_dir, '*', 'vis_data',
                                          'scalars.json'))):
        with open(path) as f:
            for line in f:
                try:
                    record = json.loads(line)
                except ValueError:  # a line cut by a kill
                    continue
                if key in record and 'step' in record:
                    scores[int(record['step'])] = record[key]
    return scores
