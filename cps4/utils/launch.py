"""Launcher settings shared by tools/train.py and tools/test.py."""
import atexit
import datetime
import difflib
import logging
import re
from contextlib import contextmanager
from typing import Iterator, Optional

import torch
import torch.distributed as dist
from mmengine.config import Config
from mmengine.logging import print_log


def init_cpu_dist(cfg: Config) -> None:
    """Start a torchrun process group over gloo when there is no CUDA.

    mmengine's ``pytorch`` launcher binds each process to a GPU before it
    joins the group, and the configs name nccl, the GPU backend. On a
    CPU-only machine (e.g. ``tools/dist_train.sh CONFIG 2`` on a laptop, or
    a CI check of multi-process code) this joins the group over gloo first;
    the Runner then finds it initialised and goes on with it. The model
    wrapper gets ``device_ids=None``, which DistributedDataParallel needs
    for a model on the CPU. Nothing changes on a machine with CUDA or for
    single-process runs.

    Args:
        cfg (Config): The run's config (``launcher``, ``env_cfg``,
            ``model_wrapper_cfg``); its ``dist_cfg.backend`` is set to
            ``'gloo'``.
    """
    if cfg.get('launcher', 'none') != 'pytorch' or torch.cuda.is_available():
        return
    dist_cfg = cfg.setdefault('env_cfg', {}).setdefault('dist_cfg', {})
    if dist_cfg.get('backend', 'nccl') == 'nccl':
        print_log('no CUDA device: distributed backend nccl -> gloo',
                  logger='current', level=logging.WARNING)
    dist_cfg['backend'] = 'gloo'
    wrapper = cfg.get('model_wrapper_cfg') or dict(
        type='MMDistributedDataParallel', broadcast_buffers=False,
        find_unused_parameters=cfg.get('find_unused_parameters', False))
    wrapper['device_ids'] = None
    cfg.model_wrapper_cfg = wrapper
    if not dist.is_initialized():
        timeout = dist_cfg.get('timeout')
        kwargs = {} if timeout is None else dict(
            timeout=datetime.timedelta(seconds=timeout))
        dist.init_process_group(backend='gloo', **kwargs)
        # leave the group before the interpreter tears down gloo's threads
        # (otherwise a rank may abort at exit: "terminate called without an
        # active exception")
        atexit.register(_destroy_process_group)


def _destroy_process_group() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()


def close_dist() -> None:
    """Leave the process group at the end of a run that every rank finished.

    Call it last in a tool's ``main``; it does nothing without a process
    group. A gloo worker thread frees the last reference to a finished
    collective (e.g. the broadcast of the test metrics) shortly after the
    collective returns, and needs the GIL for it. A rank that reaches
    interpreter shutdown within that moment aborts ("terminate called
    without an active exception", exit code -6) although its run
    succeeded, and torchrun then fails the whole job. The barrier gives
    every rank's worker threads that moment before any rank leaves; only
    a run that ended normally on all ranks may wait on it, so an error
    still exits at once (through the ``atexit`` hook of
    :func:`init_cpu_dist`, without a barrier).
    """
    if dist.is_initialized():
        dist.barrier()
    _destroy_process_group()


_UNKNOWN_TYPE = re.compile(r'(\S+) is not in the (\w+)::(\w+) registry')


def explain_registry_error(exc: BaseException) -> Optional[str]:
    """A message listing the known types for an unknown-type ``KeyError``.

    mmengine reports a config ``type`` that no module registered as
    "``X is not in the mmseg::model registry``". This adds the names that
    are registered there (and the closest ones), so the fix is visible in
    the error itself.

    Args:
        exc (BaseException): The error raised while building from a config.

    Returns:
        str | None: The message, or None if ``exc`` is not such an error.
    """
    match = _UNKNOWN_TYPE.search(str(exc))
    if match is None:
        return None
    name, scope, registry_name = match.groups()
    name = name.strip('`\'"')
    import mmengine.registry as root
    import mmseg.registry as seg
    registries = {r.name: r for r in vars(seg).values()
                  if isinstance(r, root.Registry)}
    registry = registries.get(registry_name)
    if registry is None:
        return None
    known = set(registry.module_dict)
    if registry.parent is not None:
        known |= set(registry.parent.module_dict)
    known = sorted(known)
    close = difflib.get_close_matches(name, known, n=3, cutoff=0.6)
    hint = f' Did you mean {close}?' if close else ''
    return (f'unknown type {name!r} in the {scope}::{registry_name} '
            f'registry.{hint} Registered types ({len(known)}): '
            f'{", ".join(known)}. A type of your own must be imported '
            "first: custom_imports = dict(imports=['cps4', 'your_module']).")


def merge_cfg_options(cfg: Config, options: Optional[dict]) -> None:
    """Merge ``--cfg-options`` into ``cfg``, refusing unknown top-level keys.

    ``Config.merge_from_dict`` adds any key it is given, so a typo such as
    ``trian_cfg.max_iters=5`` is silently ignored by the runner. A
    top-level key must be one the config already has or one the runner
    reads (an argument of ``mmengine.runner.Runner``).

    Args:
        cfg (Config): The loaded config, changed in place.
        options (dict, optional): ``key.path=value`` pairs as parsed by
            ``mmengine.config.DictAction``; None merges nothing.

    Raises:
        ValueError: An unknown top-level key; the message names the
            nearest valid ones.
    """
    if not options:
        return
    import inspect

    from mmengine.runner import Runner
    valid = set(cfg.keys()) | {
        name for name in inspect.signature(Runner.__init__).parameters
        if name != 'self'} | {'custom_imports', 'default_scope'}
    for key in options:
        top = str(key).split('.', 1)[0]
        if top not in valid:
            close = difflib.get_close_matches(top, sorted(valid), n=3,
                                              cutoff=0.6)
            hint = f'; did you mean {close[0]!r}' if close else ''
            raise ValueError(
                f'--cfg-options {key}: the config has no top-level key '
                f'{top!r}{hint}? (an unknown key would be ignored silently; '
                f'known keys: {", ".join(sorted(valid))})')
    cfg.merge_from_dict(options)


@contextmanager
def explained_registry_errors() -> Iterator[None]:
    """Re-raise unknown-type ``KeyError``s with :func:`explain_registry_error`."""
    try:
        yield
    except KeyError as exc:
        message = explain_registry_error(exc)
        if message is None:
            raise
        raise KeyError(message) from exc
