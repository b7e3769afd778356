"""Mixed-precision optimizer wrapper that also runs on the CPU (bfloat16)."""
from contextlib import contextmanager
from typing import Optional, Union

import torch
import torch.nn as nn
from mmengine.device import get_device
from mmengine.optim import OptimWrapper
from mmengine.runner.amp import autocast
from mmseg.registry import OPTIM_WRAPPERS

_DTYPES = ('float16', 'bfloat16')


@OPTIM_WRAPPERS.register_module()
class MixedPrecisionOptimWrapper(OptimWrapper):
    """Automatic mixed precision on any device, configured like mmengine's
    ``AmpOptimWrapper``.

    mmengine's ``AmpOptimWrapper`` refuses to start without a GPU. This
    wrapper runs the forward pass and the losses under ``torch.autocast`` on
    the device the model trains on: bfloat16 on the CPU (where AMX/AVX512
    kernels make convolutions about twice as fast), float16 or bfloat16 on
    CUDA. Parameters, gradients, optimizer state and the EMA teacher stay in
    float32; only the activations of autocast-eligible ops (convolutions,
    linear layers, matrix products) are in the lower precision, and the
    losses of this package cast their inputs back to float32.

    float16 scales the loss (``torch.amp.GradScaler``) so that small
    gradients do not underflow; bfloat16 has float32's exponent range and
    needs no scaling, so ``loss_scale`` is ignored for it.

    Example::

        optim_wrapper = dict(
            type='MixedPrecisionOptimWrapper', dtype='bfloat16',
            optimizer=dict(type='AdamW', lr=1e-2))

    Args:
        dtype (str | torch.dtype, optional): ``'bfloat16'`` or
            ``'float16'``. Defaults to bfloat16 on the CPU and float16 on
            CUDA. The CPU supports bfloat16 only.
        loss_scale (str | float | dict): Initial configuration of the
            float16 ``GradScaler``, as in ``AmpOptimWrapper``:
            ``'dynamic'``, an initial scale, or a dict of GradScaler
            arguments. Defaults to ``'dynamic'``.
        device (str, optional): Device type the model trains on
            (``'cpu'``, ``'cuda'``). Defaults to mmengine's current device.
        **kwargs: Passed to ``OptimWrapper`` (``optimizer``, ``clip_grad``,
            ``accumulative_counts``).
    """

    def __init__(self,
                 dtype: Union[str, torch.dtype, None] = None,
                 loss_scale: Union[str, float, dict] = 'dynamic',
                 device: Optional[str] = None,
                 **kwargs) -> None:
        super().__init__(**kwargs)
        self.device_type = (device or get_device()).split(':')[0]
        if dtype is None:
            dtype = 'bfloat16' if self.device_type == 'cpu' else 'float16'
        if isinstance(dtype, torch.dtype):
            dtype = str(dtype).replace('torch.', '')
        if dtype not in _DTYPES:
            raise ValueError(f'MixedPrecisionOptimWrapper: dtype must be one '
                             f'of {_DTYPES}, got {dtype!r}')
        if self.device_type == 'cpu' and dtype != 'bfloat16':
            raise ValueError(
                'MixedPrecisionOptimWrapper: the CPU runs mixed precision in '
                f"bfloat16 only, got dtype={dtype!r}; set dtype='bfloat16'")
        self.cast_dtype = getattr(torch, dtype)
        self.loss_scaler = None
        if self.cast_dtype == torch.float16:
            self.loss_scaler = self._build_scaler(loss_scale)

    def _build_scaler(self, loss_scale) -> 'torch.amp.GradScaler':
        if loss_scale == 'dynamic':
            return torch.amp.GradScaler(self.device_type)
        if isinstance(loss_scale, (int, float)):
            return torch.amp.GradScaler(
                self.device_type, init_scale=float(loss_scale),
                growth_interval=2**31 - 1)  # static: the scale never grows
        if isinstance(loss_scale, dict):
            return torch.amp.GradScaler(self.device_type, **loss_scale)
        raise TypeError('loss_scale must be "dynamic", a number or a dict, '
                        f'got {loss_scale!r}')

    def backward(self, loss: torch.Tensor, **kwargs) -> None:
        """Back-propagate ``loss`` (scaled in float16)."""
        if self.loss_scaler is not None:
            loss = self.loss_scaler.scale(loss)
        super().backward(loss, **kwargs)

    def step(self, **kwargs) -> None:
        """Clip (after unscaling) and update the parameters."""
        if self.loss_scaler is None:
            super().step(**kwargs)
            return
        if self.clip_grad_kwargs:
            self.loss_scaler.unscale_(self.optimizer)
            self._clip_grad()
        self.loss_scaler.step(self.optimizer, **kwargs)
        self.loss_scaler.update()

    def state_dict(self) -> dict:
        """The optimizer state, plus the loss scaler's in float16."""
        state = super().state_dict()
        if self.loss_scaler is not None:
            state['loss_scaler'] = self.loss_scaler.state_dict()
        return state

    def load_state_dict(self, state_dict: dict) -> None:
        """Load what :meth:`state_dict` wrote (or a plain optimizer's)."""
        state_dict = dict(state_dict)
        scaler = state_dict.pop('loss_scaler', None)
        if scaler is not None and self.loss_scaler is not None:
            self.loss_scaler.load_state_dict(scaler)
        super().load_state_dict(state_dict)

    @contextmanager
    def optim_context(self, model: nn.Module):
        """Autocast on top of ``OptimWrapper``'s gradient-sync context."""
        with super().optim_context(model), autocast(
                device_type=self.device_type, dtype=self.cast_dtype):
            yield
