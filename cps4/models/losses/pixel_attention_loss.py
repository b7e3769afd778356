"""Pixel-level attention consistency loss of CPS4 stage 1."""
from typing import Dict, Optional, Sequence, Union

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmseg.registry import MODELS

from ..utils import rampup_factor


def pixel_attention_loss_terms(
        logits: torch.Tensor,
        seg: torch.Tensor,
        ignore_index: int = 255,
        pos_weight: Optional[Union[float, Sequence[float]]] = None,
        include_background: bool = False,
        smooth: float = 1e-5,
        terms: Sequence[str] = ('bce', 'dice', 'ce'),
        bce_background: bool = True
) -> Dict[str, torch.Tensor]:
    """Unweighted BCE, Dice and CE terms of :class:`PixelAttentionLoss`.

    Args:
        logits (Tensor): Class scores ``S_k`` of shape (B, K, h, w), before
            the sigmoid; bilinearly upsampled (``align_corners=False``) to
            the label size when ``(h, w) != (H, W)``.
        seg (Tensor): Labels of shape (B, H, W) or (B, 1, H, W).
        ignore_index (int): Label value excluded from every term.
        pos_weight (float | Sequence[float], optional): Weight of positive
            pixels in the BCE, one value or one per class.
        include_background (bool): Whether class 0 enters the Dice mean.
        smooth (float): Dice smoothing term.
        terms (Sequence[str]): Which of ``'bce'``, ``'dice'``, ``'ce'`` to
            compute.
        bce_background (bool): Whether the background map ``B_0`` enters
            the BCE; without it the BCE averages over the ``K - 1`` unit
            maps and background is learned through the CE only.

    Returns:
        dict[str, Tensor]: Scalar term per requested name.
    """
    if seg.dim() == 4:
        seg = seg.squeeze(1)
    if logits.shape[2:] != seg.shape[1:]:
        logits = F.interpolate(
            logits, size=seg.shape[1:], mode='bilinear', align_corners=False)
    logits = logits.float()
    num_classes = logits.shape[1]
    valid = seg != ignore_index
    labels = torch.where(valid, seg, torch.zeros_like(seg)).long()
    validf = valid.unsqueeze(1).float()
    onehot = F.one_hot(labels, num_classes).permute(0, 3, 1, 2).float()
    onehot = onehot * validf
    num_valid = valid.sum().clamp_min(1)
    zero = logits.sum() * 0

    out = {}
    if 'bce' in terms:
        pw = None
        if pos_weight is not None:
            pw = torch.as_tensor(
                pos_weight, dtype=logits.dtype, device=logits.device)
            pw = pw.reshape(-1, 1, 1)  # (1 or K, 1, 1) broadcasts over K
        bce = F.binary_cross_entropy_with_logits(
            logits, onehot, pos_weight=pw, reduction='none')
        first = 0 if bce_background else 1
        out['bce'] = (bce[:, first:] * validf).sum() / (
            num_valid * (num_classes - first))
    if 'dice' in terms:
        probs = logits.sigmoid() * validf
        inter = (probs * onehot).sum((0, 2, 3))
        denom = probs.sum((0, 2, 3)) + onehot.sum((0, 2, 3))
        dice = (2 * inter + smooth) / (denom + smooth)
        counted = onehot.sum((0, 2, 3)) > 0
        if not include_background:
            counted[0] = False
        out['dice'] = (1 - dice[counted]).mean() if counted.any() else zero
    if 'ce' in terms:
        ce = F.cross_entropy(logits, labels, reduction='none')
        out['ce'] = (ce * valid.float()).sum() / num_valid
    return out


@MODELS.register_module()
class PixelAttentionLoss(nn.Module):
    r"""BCE + Dice + CE on the class-specific pixel maps of the VLM.

    ``S_k(p) = tau * cos(F(p), t'_k) + b_k`` are the class scores (logits),
    ``B_k = sigmoid(S_k)`` the class-specific binary maps and
    ``y_k(p) = 1[y(p) = k]``. ``S`` is first upsampled bilinearly
    (``align_corners=False``) to the label size when smaller. With
    :math:`\Omega` the ``V`` non-ignored pixels of the batch and ``K``
    classes (background included):

    .. math::

        L_{bce} = -\frac{1}{V K} \sum_{p \in \Omega} \sum_{k}
            \left[\omega_k y_k \log B_k + (1 - y_k) \log(1 - B_k)\right],

    with :math:`\omega_k` = ``pos_weight`` (1 by default). Per-class soft
    Dice over the whole batch, averaged over the set :math:`C` of classes
    present in the batch's labels (class 0 only with
    ``include_background=True``):

    .. math::

        D_k = \frac{2 \sum_{p \in \Omega} B_k y_k + s}
                   {\sum_{p \in \Omega} B_k + \sum_{p \in \Omega} y_k + s},
        \qquad L_{dice} = \frac{1}{|C|} \sum_{k \in C} (1 - D_k).

    Classes absent from the batch are left out of the Dice mean (their
    Dice would be ``s / (sum B_k + s)``, a noisy push towards 0 that BCE and
    CE already give); when ``C`` is empty the term is 0 with the graph kept.
    Multi-class cross-entropy over the softmax of the same scores:

    .. math::

        L_{ce} = -\frac{1}{V} \sum_{p \in \Omega}
            \log \frac{\exp S_{y(p)}(p)}{\sum_{k} \exp S_k(p)}.

    The loss is

    .. math::

        L = w \left(\lambda_{bce} L_{bce} + \lambda_{dice} L_{dice}
            + \lambda_{ce} L_{ce}\right).

    Args:
        loss_weight (float): Multiplier ``w``. Defaults to 1.0.
        bce_weight (float): :math:`\lambda_{bce}`. Defaults to 1.0.
        dice_weight (float): :math:`\lambda_{dice}`. Defaults to 1.0.
        ce_weight (float): :math:`\lambda_{ce}`. Defaults to 1.0.
        pos_weight (float | Sequence[float], optional): :math:`\omega_k`,
            one value or one per class. Defaults to None (1).
        include_background (bool): Whether class 0 enters the Dice mean
            (BCE and CE always use every class). Defaults to False.
        smooth (float): Dice smoothing ``s``. Defaults to 1e-5.
        bce_background (bool): Whether the background map enters the BCE
            (the sum then runs over ``k = 1..K-1`` and is divided by
            ``V (K - 1)``). Defaults to True.
        ignore_index (int): Label value to ignore. Defaults to 255.
        return_terms (bool): Return ``{loss_name + '_bce': ...,
            loss_name + '_dice': ..., loss_name + '_ce': ...}``, each term
            already multiplied by its weight and ``loss_weight`` (their sum
            is the scalar loss), instead of the scalar, so that mmengine
            logs them separately and still sums them. Terms with weight 0
            are neither computed nor returned. Defaults to False.
        loss_name (str): Name of the loss item; must start with ``loss_``.
            Defaults to 'loss_pixel'.
        rampup_iters (int): Multiply the BCE and Dice terms (not the CE) by
            a sigmoid ramp-up (:func:`cps4.models.utils.sigmoid_rampup`)
            over this many training iterations, so that the multi-class
            decision is shaped before the one-vs-rest maps are constrained.
            0 (the default) disables it.
    """

    def __init__(self,
                 loss_weight: float = 1.0,
                 bce_weight: float = 1.0,
                 dice_weight: float = 1.0,
                 ce_weight: float = 1.0,
                 pos_weight: Optional[Union[float, Sequence[float]]] = None,
                 include_background: bool = False,
                 smooth: float = 1e-5,
                 bce_background: bool = True,
                 ignore_index: int = 255,
                 return_terms: bool = False,
                 loss_name: str = 'loss_pixel',
                 rampup_iters: int = 0) -> None:
        super().__init__()
        if not loss_name.startswith('loss_'):
            raise ValueError(f'loss_name must start with "loss_", got '
                             f'{loss_name!r}')
        self.loss_weight = loss_weight
        self.term_weights = dict(
            bce=bce_weight, dice=dice_weight, ce=ce_weight)
        self.pos_weight = pos_weight
        self.include_background = include_background
        self.smooth = smooth
        self.bce_background = bce_background
        self.ignore_index = ignore_index
        self.return_terms = return_terms
        self._loss_name = loss_name
        self.rampup_iters = int(rampup_iters)

    def forward(self,
                logits: torch.Tensor,
                seg: torch.Tensor,
                weight: Optional[torch.Tensor] = None,
                ignore_index: Optional[int] = None,
                **kwargs) -> Union[torch.Tensor, Dict[str, torch.Tensor]]:
        """Compute the loss.

        Args:
            logits (Tensor): Class scores ``S_k`` (B, K, h, w) before the
                sigmoid, at label resolution or lower.
            seg (Tensor): Labels (B, H, W) or (B, 1, H, W).
            weight (Tensor, optional): Unused; kept for mmseg's decode head
                call signature.
            ignore_index (int, optional): Overrides ``self.ignore_index``.

        Returns:
            Tensor | dict[str, Tensor]: The weighted scalar loss, or the
            dict of weighted terms when ``return_terms`` is True.
        """
        ignore = self.ignore_index if ignore_index is None else ignore_index
        names = [k for k, v in self.term_weights.items() if v != 0]
        raw = pixel_attention_loss_terms(
            logits, seg, ignore, self.pos_weight, self.include_background,
            self.smooth, terms=names, bce_background=self.bce_background)
        ramp = rampup_factor(self.rampup_iters)
        terms = {
            f'{self._loss_name}_{k}':
            self.loss_weight * self.term_weights[k] *
            (1.0 if k == 'ce' else ramp) * raw[k]
            for k in names
        }
        if self.return_terms:
            return terms
        if not terms:
            return logits.sum() * 0
        return sum(terms.values())

    @property
    def loss_name(self) -> str:
        """str: Name of the loss item."""
        return self._loss_name
