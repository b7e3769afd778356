"""Keep validation during training from changing the training's random
stream."""
import random
from typing import Optional

import numpy as np
import torch
from mmengine.hooks import Hook
from mmengine.runner import Runner
from mmseg.registry import HOOKS


@HOOKS.register_module()
class ValRandomStateHook(Hook):
    """Save the random states of Python, NumPy and torch (and CUDA) before
    each validation and restore them after it.

    Creating a dataloader iterator draws its base seed from torch's global
    generator, and a pipeline or model may draw more; without this hook, a
    run that validates every 500 iterations trains on other random numbers
    than one that validates only at the end. With it, the weights of a
    seeded run do not depend on ``train_cfg.val_interval``, so validating
    often (to keep the best-on-val checkpoint) changes no training result.

    A validation run on its own (``runner.val()``) is wrapped the same way,
    which changes nothing for it.
    """

    priority = 'VERY_HIGH'

    def __init__(self) -> None:
        self._state: Optional[tuple] = None

    def before_val(self, runner: Runner) -> None:
        cuda = (torch.cuda.get_rng_state_all()
                if torch.cuda.is_available() else None)
        self._state = (random.getstate(), np.random.get_state(),
                       torch.get_rng_state(), cuda)

    def after_val(self, runner: Runner) -> None:
        if self._state is None:
            return
        python, numpy_state, cpu, cuda = self._state
        random.setstate(python)
        np.random.set_state(numpy_state)
        torch.set_rng_state(cpu)
        if cuda is not None:
            torch.cuda.set_rng_state_all(cuda)
        self._state = None
