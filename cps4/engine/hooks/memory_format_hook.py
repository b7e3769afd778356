"""Put a model's 4-D weights in channels-last memory format."""
import torch
import torch.nn as nn
from mmengine.hooks import Hook
from mmengine.logging import print_log
from mmengine.model import is_model_wrapper
from mmengine.runner import Runner
from mmseg.registry import HOOKS

MEMORY_FORMATS = {
    'channels_last': torch.channels_last,
    'contiguous': torch.contiguous_format,
}


def to_memory_format(model: nn.Module, memory_format: str) -> nn.Module:
    """Convert the 4-D parameters and buffers of ``model`` in place.

    With channels-last weights the CPU (oneDNN) and CUDA (cuDNN)
    convolutions keep their activations channels-last too, which avoids a
    layout reorder around every convolution; the inputs need no change.

    Args:
        model (nn.Module): Converted in place.
        memory_format (str): ``'channels_last'`` or ``'contiguous'``.

    Returns:
        nn.Module: ``model``.
    """
    if memory_format not in MEMORY_FORMATS:
        raise ValueError(f'memory_format must be one of '
                         f'{sorted(MEMORY_FORMATS)}, got {memory_format!r}')
    return model.to(memory_format=MEMORY_FORMATS[memory_format])


@HOOKS.register_module()
class MemoryFormatHook(Hook):
    """Run training, validation and testing with channels-last weights.

    Converts the whole model (student, teacher, stage-1 VLM) before the run
    starts. Checkpoints load into converted weights as usual, and
    :func:`cps4.apis.init_model` applies the same conversion when the
    config lists this hook. Together with mixed precision
    (``MixedPrecisionOptimWrapper``) this is the fast CPU setting; see
    ``tools/analysis/profile_train_throughput.py``.

    Args:
        memory_format (str): ``'channels_last'`` (default) or
            ``'contiguous'``.
    """

    priority = 'VERY_HIGH'

    def __init__(self, memory_format: str = 'channels_last') -> None:
        if memory_format not in MEMORY_FORMATS:
            raise ValueError(f'MemoryFormatHook: memory_format must be one '
                             f'of {sorted(MEMORY_FORMATS)}, got '
                             f'{memory_format!r}')
        self.memory_format = memory_format

    def before_run(self, runner: Runner) -> None:
        """Convert the model."""
        model = runner.model
        if is_model_wrapper(model):
            model = model.module
        to_memory_format(model, self.memory_format)
        print_log(f'MemoryFormatHook: model weights in {self.memory_format} '
                  'memory format', logger='current')
