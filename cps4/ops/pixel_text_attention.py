"""Fused pixel-text attention: cosine similarity of every pixel feature with
every class embedding, scaled, biased and activated in one pass.

``S[b, k, h, w] = logit_scale * <f[b, :, h, w] / |f|, t[b, k, :] / |t|>
+ bias[k]``, followed by softmax over ``k``, sigmoid, or nothing. The norms
are clamped below by ``eps`` exactly as :func:`torch.nn.functional.normalize`
does.

The compiled kernels (``cps4._C``, built from ``csrc/pixel_text_attention``)
never materialise the normalised feature map, forward or backward. When the
extension is not built, :func:`pixel_text_attention` falls back to
:func:`pixel_text_attention_reference` and logs a warning once.

The schema of ``torch.ops.cps4.pixel_text_attention_forward`` is defined in
C++; this module registers its fake (meta) kernel and autograd formula with
:mod:`torch.library`, so ``torch.compile`` and ``torch.library.opcheck``
work.
"""
import logging
from typing import Optional, Union

import torch
import torch.nn.functional as F
from mmengine.logging import print_log
from torch import Tensor

MODES = ('softmax', 'sigmoid', 'logits')
_MODE_IDS = {name: i for i, name in enumerate(MODES)}

try:
    from cps4 import _C  # noqa: F401  (registers torch.ops.cps4.*)
    HAS_EXTENSION = True
    _IMPORT_ERROR: Optional[BaseException] = None
except ImportError as exc:  # pragma: no cover - depends on the build
    HAS_EXTENSION = False
    _IMPORT_ERROR = exc
_warned_fallback = False


def _check_inputs(feats: Tensor, text: Tensor, logit_scale: Tensor,
                  bias: Optional[Tensor], mode: str) -> None:
    """Raise a clear error for inputs the op does not accept."""
    if mode not in MODES:
        raise ValueError(f'pixel_text_attention: mode must be one of {MODES}'
                         f', got {mode!r}')
    if not isinstance(feats, Tensor) or feats.dim() != 4:
        raise ValueError('pixel_text_attention: feats must be a 4-D tensor '
                         f'[B, C, H, W], got shape {_shape(feats)}')
    if not isinstance(text, Tensor) or text.dim() != 3:
        raise ValueError('pixel_text_attention: text must be a 3-D tensor '
                         f'[B or 1, K, C], got shape {_shape(text)}')
    named = [('feats', feats), ('text', text), ('logit_scale', logit_scale)]
    if bias is not None:
        named.append(('bias', bias))
    for name, t in named:
        if not t.is_floating_point():
            raise ValueError(f'pixel_text_attention: {name} must be a '
                             f'floating point tensor, got {t.dtype}')
        if t.dtype != feats.dtype:
            raise ValueError(
                f'pixel_text_attention: {name} has dtype {t.dtype} but feats '
                f'has {feats.dtype}; cast them to one dtype')
        if t.device != feats.device:
            raise ValueError(
                f'pixel_text_attention: {name} is on {t.device} but feats is '
                f'on {feats.device}; move them to one device')
    b, c, h, w = feats.shape
    if b == 0 or c == 0 or h == 0 or w == 0:
        raise ValueError('pixel_text_attention: feats must not be empty, got '
                         f'shape {tuple(feats.shape)}')
    if text.shape[0] not in (1, b):
        raise ValueError(
            f'pixel_text_attention: text batch {text.shape[0]} must be 1 or '
            f'match feats batch {b} (text {tuple(text.shape)}, feats '
            f'{tuple(feats.shape)})')
    if text.shape[1] == 0:
        raise ValueError('pixel_text_attention: text has no class (K = 0), '
                         f'shape {tuple(text.shape)}')
    if text.shape[2] != c:
        raise ValueError(
            f'pixel_text_attention: text has C = {text.shape[2]} channels but '
            f'feats has C = {c} (text {tuple(text.shape)}, feats '
            f'{tuple(feats.shape)})')
    if logit_scale.numel() != 1:
        raise ValueError('pixel_text_attention: logit_scale must hold one '
                         f'value, got shape {tuple(logit_scale.shape)}')
    if bias is not None and (bias.dim() != 1
                             or bias.shape[0] != text.shape[1]):
        raise ValueError(
            f'pixel_text_attention: bias must have shape [K] = '
            f'[{text.shape[1]}], got {tuple(bias.shape)}')


def _shape(x) -> str:
    return str(tuple(x.shape)) if isinstance(x, Tensor) else type(x).__name__


def _as_scale(logit_scale: Union[float, Tensor], like: Tensor) -> Tensor:
    if isinstance(logit_scale, Tensor):
        return logit_scale
    return torch.tensor(float(logit_scale), dtype=like.dtype,
                        device=like.device)


def _cast(dtype: torch.dtype, *tensors: Optional[Tensor]) -> tuple:
    """``tensors`` in ``dtype`` (None stays None)."""
    return tuple(None if t is None else t.to(dtype) for t in tensors)


def _activate(logits: Tensor, mode: str) -> Tensor:
    if mode == 'softmax':
        return logits.softmax(dim=1)
    if mode == 'sigmoid':
        return logits.sigmoid()
    return logits


def pixel_text_attention_reference(feats: Tensor,
                                   text: Tensor,
                                   logit_scale: Union[float, Tensor],
                                   bias: Optional[Tensor] = None,
                                   mode: str = 'softmax',
                                   eps: float = 1e-6) -> Tensor:
    """Pure-PyTorch pixel-text attention: the test oracle and the fallback.

    Args:
        feats (Tensor): Pixel features [B, C, H, W].
        text (Tensor): Class embeddings [B or 1, K, C].
        logit_scale (float | Tensor): Scale of the cosine similarities; a
            one-element tensor may require grad.
        bias (Tensor, optional): Per-class bias [K].
        mode (str): ``'softmax'`` (over classes), ``'sigmoid'`` or
            ``'logits'``.
        eps (float): Lower bound of the norms.

    Returns:
        Tensor: [B, K, H, W].
    """
    scale = _as_scale(logit_scale, feats)
    _check_inputs(feats, text, scale, bias, mode)
    f = F.normalize(feats, dim=1, eps=eps)
    t = F.normalize(text, dim=2, eps=eps).expand(feats.shape[0], -1, -1)
    logits = torch.einsum('bchw,bkc->bkhw', f, t) * scale.reshape(())
    if bias is not None:
        logits = logits + bias.view(1, -1, 1, 1)
    return _activate(logits, mode)


def pixel_text_attention(feats: Tensor,
                         text: Tensor,
                         logit_scale: Union[float, Tensor],
                         bias: Optional[Tensor] = None,
                         mode: str = 'softmax',
                         eps: float = 1e-6) -> Tensor:
    """Fused pixel-text attention (see the module docstring).

    Args:
        feats (Tensor): Pixel features [B, C, H, W] (any memory format).
        text (Tensor): Class embeddings [B or 1, K, C].
        logit_scale (float | Tensor): Scale; a one-element tensor may
            require grad.
        bias (Tensor, optional): Per-class bias [K].
        mode (str): ``'softmax'`` over classes, ``'sigmoid'`` or
            ``'logits'``.
        eps (float): Lower bound of the norms, as in ``F.normalize``.

    Returns:
        Tensor: Activated maps [B, K, H, W], in the inputs' dtype; in
        float32 under ``torch.autocast``, which upcasts the inputs. On the
        CPU, float16/bfloat16 inputs are computed in float32.
    """
    global _warned_fallback
    scale = _as_scale(logit_scale, feats)
    if isinstance(feats, Tensor) and torch.is_autocast_enabled(
            feats.device.type):
        # Mixed precision: the similarities feed the losses and the pseudo
        # labels, so the op runs in float32 whatever autocast made of its
        # inputs (like the losses autocast keeps in float32).
        feats, text, scale, bias = _cast(torch.float32, feats, text, scale,
                                         bias)
    _check_inputs(feats, text, scale, bias, mode)
    out_dtype = feats.dtype
    if feats.device.type == 'cpu' and out_dtype in (torch.float16,
                                                    torch.bfloat16):
        # the CPU kernels compute in float32 or float64: half-precision
        # inputs are upcast, and the result cast back to their dtype
        feats, text, scale, bias = _cast(torch.float32, feats, text, scale,
                                         bias)
        return pixel_text_attention(feats, text, scale, bias, mode,
                                    eps).to(out_dtype)
    if not HAS_EXTENSION:
        if not _warned_fallback:
            print_log(
                'cps4._C is not built, pixel_text_attention uses the '
                f'pure-PyTorch reference ({_IMPORT_ERROR}); build it with '
                '`pip install --no-build-isolation -e .`',
                logger='current', level=logging.WARNING)
            _warned_fallback = True
        return pixel_text_attention_reference(feats, text, scale, bias, mode,
                                              eps)
    out, _, _, _ = torch.ops.cps4.pixel_text_attention_forward(
        feats, text, scale.reshape(()), bias, _MODE_IDS[mode], eps)
    return out


if HAS_EXTENSION:

    @torch.library.register_fake('cps4::pixel_text_attention_forward')
    def _forward_fake(feats, text, logit_scale, bias, mode, eps):
        b, _, h, w = feats.shape
        k = text.shape[1]
        out = feats.new_empty((b, k, h, w))
        cos = feats.new_empty((b, k, h, w))
        # saved norms use the accumulation type (float32 for half types)
        acc = torch.float64 if feats.dtype == torch.float64 else torch.float32
        feat_rnorm = feats.new_empty((b, h * w), dtype=acc)
        text_rnorm = feats.new_empty((text.shape[0], k), dtype=acc)
        return out, cos, feat_rnorm, text_rnorm

    @torch.library.register_fake('cps4::pixel_text_attention_backward')
    def _backward_fake(grad_out, feats, text, logit_scale, out, cos,
                       feat_rnorm, text_rnorm, mode, eps, with_bias):
        grad_bias = feats.new_empty((text.shape[1], ) if with_bias else (0, ))
        return (torch.empty_like(feats), torch.empty_like(text),
                logit_scale.new_empty(()), grad_bias)

    def _setup_context(ctx, inputs, output):
        feats, text, logit_scale, bias, mode, eps = inputs
        out, cos, feat_rnorm, text_rnorm = output
        ctx.save_for_backward(feats, text, logit_scale, out, cos, feat_rnorm,
                              text_rnorm)
        ctx.mark_non_differentiable(cos, feat_rnorm, text_rnorm)
        ctx.mode = mode
        ctx.eps = eps
        ctx.with_bias = bias is not None

    def _backward(ctx, grad_out, grad_cos, grad_frn, grad_trn):
        feats, text, scale, out, cos, feat_rnorm, text_rnorm = \
            ctx.saved_tensors
        if grad_out is None:
            grad_out = torch.zeros_like(out)
        g_feats, g_text, g_scale, g_bias = \
            torch.ops.cps4.pixel_text_attention_backward(
                grad_out.contiguous(), feats, text, scale, out, cos,
                feat_rnorm, text_rnorm, ctx.mode, ctx.eps, ctx.with_bias)
        return (g_feats, g_text, g_scale.reshape(scale.shape),
                g_bias if ctx.with_bias else None, None, None)

    torch.library.register_autograd(
        'cps4::pixel_text_attention_forward',
        _backward,
        setup_context=_setup_context)

