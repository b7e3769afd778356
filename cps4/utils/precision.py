"""Config switches for mixed precision and channels-last weights.

One place sets them for ``tools/train.py --amp --channels-last``,
``tools/test.py --amp --channels-last`` and the SSL benchmark's
``--precision``, so all three write the same config keys:

- training: ``optim_wrapper.type='MixedPrecisionOptimWrapper'`` (bfloat16
  on the CPU, float16 on CUDA unless ``dtype`` says otherwise);
- validation and testing: ``val_cfg.fp16`` / ``test_cfg.fp16``, mmengine's
  loop switch for ``autocast`` (bfloat16 on the CPU); inference through
  :func:`cps4.apis.inference_volume` reads ``test_cfg.fp16`` too;
- channels-last weights: a ``MemoryFormatHook`` in ``custom_hooks``, which
  :func:`cps4.apis.init_model` honours as well.
"""
import logging
from typing import Optional

from mmengine.config import Config
from mmengine.logging import print_log

_AMP_WRAPPERS = ('AmpOptimWrapper', 'MixedPrecisionOptimWrapper')


def enable_mixed_precision(cfg: Config, train: bool = True,
                           dtype: Optional[str] = None) -> Config:
    """Switch ``cfg`` to mixed precision in place.

    Args:
        cfg (Config): A training/testing config.
        train (bool): Also switch the optimizer wrapper (training); False
            only sets the evaluation loops.
        dtype (str, optional): ``'bfloat16'`` or ``'float16'`` for the
            optimizer wrapper; None lets it choose by device.

    Returns:
        Config: ``cfg``.
    """
    if train and cfg.get('optim_wrapper') is not None:
        wrapper = cfg.optim_wrapper
        if wrapper.get('type') in _AMP_WRAPPERS:
            print_log(f'mixed precision is already on ({wrapper.type})',
                      logger='current', level=logging.WARNING)
        elif wrapper.get('type', 'OptimWrapper') != 'OptimWrapper':
            raise ValueError(
                'mixed precision needs optim_wrapper.type OptimWrapper, got '
                f'{wrapper.type}; set MixedPrecisionOptimWrapper in the '
                'config instead')
        else:
            wrapper.type = 'MixedPrecisionOptimWrapper'
            if dtype is not None:
                wrapper.dtype = dtype
    for loop in ('val_cfg', 'test_cfg'):
        if cfg.get(loop) is not None:
            cfg[loop]['fp16'] = True
    return cfg


def disable_mixed_precision(cfg: Config) -> Config:
    """Switch ``cfg`` back to plain float32 in place: the inverse of
    :func:`enable_mixed_precision` and :func:`enable_channels_last`.

    Lets a tool that compares precisions start every mode from float32,
    whatever the config it was given.
    """
    wrapper = cfg.get('optim_wrapper')
    if wrapper is not None and wrapper.get('type') in _AMP_WRAPPERS:
        wrapper.type = 'OptimWrapper'
        for key in ('dtype', 'loss_scale', 'use_fsdp'):
            wrapper.pop(key, None)
    for loop in ('val_cfg', 'test_cfg'):
        if cfg.get(loop) is not None:
            cfg[loop].pop('fp16', None)
    if cfg.get('custom_hooks'):
        cfg.custom_hooks = [h for h in cfg.custom_hooks
                            if h.get('type') != 'MemoryFormatHook']
    return cfg


def enable_channels_last(cfg: Config) -> Config:
    """Add a ``MemoryFormatHook`` (channels-last weights) to ``cfg``."""
    hooks = list(cfg.get('custom_hooks') or [])
    if not any(h.get('type') == 'MemoryFormatHook' for h in hooks):
        hooks.append(dict(type='MemoryFormatHook',
                          memory_format='channels_last'))
    cfg.custom_hooks = hooks
    return cfg


def memory_format_of(cfg: Config) -> Optional[str]:
    """The memory format a config's ``MemoryFormatHook`` sets, if any."""
    for hook in cfg.get('custom_hooks') or []:
        if hook.get('type') == 'MemoryFormatHook':
            return hook.get('memory_format', 'channels_last')
    return None
