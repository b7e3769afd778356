"""Token-level attention consistency loss of CPS4 stage 1."""
from typing import Dict, Optional, Sequence, Tuple, Union

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmseg.registry import MODELS

from ..utils import rampup_factor


def token_attention_target(
    seg: torch.Tensor,
    num_classes: int,
    token_hw: Sequence[int],
    ignore_index: int = 255
) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per-class attention targets on the token grid.

    The one-hot label map (ignored pixels set to zero in every class) is
    area-pooled to the token grid (``adaptive_avg_pool2d``; plain average
    pooling when ``H``/``W`` are multiples of ``h``/``w``), which gives
    ``m_kn``, the fraction of token ``n``'s area covered by class ``k``.

    Args:
        seg (Tensor): Labels of shape (B, H, W) or (B, 1, H, W).
        num_classes (int): Number of classes ``K`` (background included).
        token_hw (Sequence[int]): Token grid size ``(h, w)``.
        ignore_index (int): Label value excluded from the target.

    Returns:
        tuple[Tensor, Tensor, Tensor]:

        - target (Tensor): (B, K, h*w) float, ``m_kn / sum_n m_kn``; rows of
          classes absent from the slice are all zero.
        - present (Tensor): (B, K) bool, ``sum_n m_kn > 0``.
        - fg_tokens (Tensor): (B, h*w) bool, tokens covered (partly) by any
          foreground class ``k >= 1``.
    """
    if seg.dim() == 4:
        seg = seg.squeeze(1)
    h, w = int(token_hw[0]), int(token_hw[1])
    valid = seg != ignore_index
    labels = torch.where(valid, seg, torch.zeros_like(seg)).long()
    onehot = F.one_hot(labels, num_classes).permute(0, 3, 1, 2).float()
    onehot = onehot * valid.unsqueeze(1).float()
    area = F.adaptive_avg_pool2d(onehot, (h, w)).flatten(2)  # B, K, N
    mass = area.sum(dim=2)
    present = mass > 0
    target = area / mass.clamp_min(torch.finfo(area.dtype).tiny).unsqueeze(2)
    fg_tokens = area[:, 1:].sum(dim=1) > 0
    return target, present, fg_tokens


@MODELS.register_module()
class TokenAttentionLoss(nn.Module):
    r"""Pull each class embedding's token attention onto its own unit.

    ``a_kn`` is class ``k``'s softmax attention over the ``N = h*w`` visual
    tokens (``sum_n a_kn = 1``). Its target is the class mask area-pooled
    to the token grid, ``m_kn`` = fraction of token ``n`` covered by
    class ``k`` (ignored pixels count for no class), normalised over tokens:

    .. math::

        t_{kn} = m_{kn} / \sum_{n'} m_{kn'}.

    Present classes (:math:`\sum_n m_{kn} > 0` in slice ``b``) get the
    (eps-smoothed) Kullback-Leibler divergence, averaged over the set
    :math:`P` of present pairs ``(b, k)``:

    .. math::

        L_{present} = \frac{1}{|P|} \sum_{(b,k) \in P} \sum_n t_{kn}
            \left[\log(t_{kn} + \epsilon) - \log(a_{kn} + \epsilon)\right].

    It is exactly 0 when ``a_k = t_k``; its gradient is that of the
    cross-entropy :math:`-\sum_n t_{kn} \log(a_{kn} + \epsilon)` (they
    differ by the target entropy, a constant).

    Absent classes have no mask to copy, so instead of a target of zeros
    they are pushed off the spine: with :math:`G` the tokens covered by any
    foreground class (``k >= 1``) of the slice,

    .. math::

        L_{absent} = \frac{1}{|A|} \sum_{(b,k) \in A}
            -\log\left(1 - \sum_{n \in G} a_{kn} + \epsilon\right),

    where :math:`A` holds the absent pairs of slices whose ``G`` is neither
    empty (nothing to avoid: the term would be a constant 0) nor the whole
    grid (nowhere else to go). The loss is

    .. math::

        L = w \left(L_{present} + \lambda_{abs} L_{absent}\right),

    with ``w = loss_weight`` and :math:`\lambda_{abs}` = ``absent_weight``.
    Background (class 0) is an ordinary class, its target being the
    background area; with ``include_background=False`` it is left out of
    both ``P`` and ``A`` (its area still does not belong to ``G``). An empty
    set contributes 0 (``attn.sum() * 0``, so the graph stays intact).

    Args:
        loss_weight (float): Multiplier ``w`` of the loss. Defaults to 1.0.
        absent_weight (float): Weight :math:`\lambda_{abs}` of the absent
            term. Defaults to 0.5.
        ignore_index (int): Label value to ignore. Defaults to 255.
        include_background (bool): Whether class 0 enters the loss.
            Defaults to True.
        eps (float): Smoothing inside the logarithms. Defaults to 1e-6.
        return_terms (bool): Return a dict ``{loss_name + '_kl': ...,
            loss_name + '_absent': ...}`` of the two weighted terms (their
            sum is the scalar loss) instead of a scalar, so that they are
            logged separately. Defaults to False.
        loss_name (str): Name of the loss item; must start with ``loss_``.
            Defaults to 'loss_token'.
        rampup_iters (int): Multiply the loss by a sigmoid ramp-up
            (:func:`cps4.models.utils.sigmoid_rampup`) over this many
            training iterations, so that the segmentation terms shape the
            features first. 0 (the default) disables it.
    """

    def __init__(self,
                 loss_weight: float = 1.0,
                 absent_weight: float = 0.5,
                 ignore_index: int = 255,
                 include_background: bool = True,
                 eps: float = 1e-6,
                 return_terms: bool = False,
                 loss_name: str = 'loss_token',
                 rampup_iters: int = 0) -> None:
        super().__init__()
        if not loss_name.startswith('loss_'):
            raise ValueError(f'loss_name must start with "loss_", got '
                             f'{loss_name!r}')
        self.loss_weight = loss_weight
        self.absent_weight = absent_weight
        self.ignore_index = ignore_index
        self.include_background = include_background
        self.eps = eps
        self.return_terms = return_terms
        self._loss_name = loss_name
        self.rampup_iters = int(rampup_iters)

    def forward(self,
                attn: torch.Tensor,
                seg: torch.Tensor,
                token_hw: Optional[Sequence[int]] = None,
                ignore_index: Optional[int] = None,
                **kwargs) -> Union[torch.Tensor, Dict[str, torch.Tensor]]:
        """Compute the loss.

        Args:
            attn (Tensor): Attention of shape (B, K, N), rows summing to 1,
                or (B, K, h, w) (then ``token_hw`` may be omitted).
            seg (Tensor): Full-resolution labels (B, H, W) or (B, 1, H, W).
            token_hw (Sequence[int], optional): Token grid ``(h, w)`` with
                ``h * w == N``, row-major like ``flatten(2)``.
            ignore_index (int, optional): Overrides ``self.ignore_index``.

        Returns:
            Tensor | dict[str, Tensor]: The weighted scalar loss, or the
            dict of weighted terms when ``return_terms`` is True.
        """
        attn = attn.float()  # also under mixed precision
        if attn.dim() == 4:
            token_hw = attn.shape[2:] if token_hw is None else token_hw
            attn = attn.flatten(2)
        if token_hw is None:
            raise ValueError('token_hw is required when attn is (B, K, N)')
        if int(token_hw[0]) * int(token_hw[1]) != attn.shape[2]:
            raise ValueError(f'token_hw {tuple(token_hw)} does not match '
                             f'N={attn.shape[2]}')
        ignore = self.ignore_index if ignore_index is None else ignore_index
        attn = attn.float()
        target, present, fg_tokens = token_attention_target(
            seg, attn.shape[1], token_hw, ignore)
        eps = self.eps
        zero = attn.sum() * 0

        # Present classes: KL(t_k || a_k), smoothed by eps on both sides.
        kl = (torch.xlogy(target, target + eps)
              - torch.xlogy(target, attn + eps)).sum(2)
        absent = ~present
        # Absent classes: only where there is a spine to avoid and some
        # token outside it to go to.
        num_fg = fg_tokens.sum(1)
        usable = (num_fg > 0) & (num_fg < attn.shape[2])
        absent = absent & usable.unsqueeze(1)
        if not self.include_background:
            present = present.clone()
            present[:, 0] = False
            absent[:, 0] = False
        fg_mass = (attn * fg_tokens.unsqueeze(1).float()).sum(2)
        off_spine = -((1 - fg_mass).clamp_min(0) + eps).log()

        loss_kl = kl[present].mean() if present.any() else zero
        loss_absent = off_spine[absent].mean() if absent.any() else zero
        weight = self.loss_weight * rampup_factor(self.rampup_iters)
        loss_kl = weight * loss_kl
        loss_absent = weight * self.absent_weight * loss_absent
        if self.return_terms:
            return {
                f'{self._loss_name}_kl': loss_kl,
                f'{self._loss_name}_absent': loss_absent,
            }
        return loss_kl + loss_absent

    @property
    def loss_name(self) -> str:
        """str: Name of the loss item."""
        return self._loss_name
