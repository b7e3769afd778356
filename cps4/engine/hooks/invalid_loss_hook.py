"""Stop training on a NaN or infinite loss, naming the last good checkpoint."""
import math
import os.path as osp
from typing import Optional

import torch
from mmengine.hooks import Hook
from mmengine.runner import Runner
from mmseg.registry import HOOKS


def _as_float(value) -> float:
    if torch.is_tensor(value):
        value = value.detach()
    return float(value)


@HOOKS.register_module()
class InvalidLossHook(Hook):
    """Raise as soon as the training loss is not finite.

    Training on after a NaN/Inf loss only produces NaN weights (and, at the
    next checkpoint interval, a NaN checkpoint). This hook runs before the
    checkpoint hook of the same iteration, so the poisoned weights are never
    saved, and its error names the iteration, the loss terms and the last
    checkpoint written (from ``WORK_DIR/last_checkpoint``), from which
    ``tools/train.py --resume CKPT`` continues once the cause is fixed.

    Args:
        interval (int): Check every this many iterations. Defaults to 1.
    """

    priority = 'ABOVE_NORMAL'  # before CheckpointHook (VERY_LOW)

    def __init__(self, interval: int = 1) -> None:
        self.interval = interval

    def after_train_iter(self,
                         runner: Runner,
                         batch_idx: int,
                         data_batch: Optional[dict] = None,
                         outputs: Optional[dict] = None) -> None:
        if not outputs or not self.every_n_train_iters(runner, self.interval):
            return
        loss = outputs.get('loss')
        if loss is None:
            return
        value = _as_float(loss)
        if math.isfinite(value):
            return
        bad = sorted(k for k, v in outputs.items() if k.startswith('loss')
                     and not math.isfinite(_as_float(v)))
        raise FloatingPointError(
            f'the training loss is {value} at iteration {runner.iter + 1} '
            f'(non-finite terms: {bad}); training stopped and nothing was '
            f'saved from this iteration. {self._last_good(runner)} Usual '
            'causes: a learning rate too high for the batch, NaN/Inf in '
            'the inputs, or an unstable loss term; fix it, then resume with '
            'tools/train.py CONFIG --resume CKPT.')

    @staticmethod
    def _last_good(runner: Runner) -> str:
        pointer = osp.join(runner.work_dir, 'last_checkpoint')
        if osp.isfile(pointer):
            with open(pointer) as f:
                path = f.read().strip()
            if path and osp.isfile(path):
                return f'Last good checkpoint: {path}.'
        return 'No checkpoint had been saved yet.'
