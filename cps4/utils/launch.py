"""Launcher settings shared by tools/train.py and tools/test.py."""
import datetime
import logging

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
