"""Per-class soft Dice loss for multi-class segmentation."""
from typing import Optional

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmseg.registry import MODELS


def soft_dice_loss(logits: torch.Tensor,
                   target: torch.Tensor,
                   ignore_index: int = 255,
                   include_background: bool = False,
                   batch_dice: bool = True,
                   smooth: float = 1e-5) -> torch.Tensor:
    """Mean over classes of ``1 - soft Dice`` between softmax(logits) and y.

    Args:
        logits (Tensor): Class scores of shape (N, K, H, W).
        target (Tensor): Class indices of shape (N, H, W).
        ignore_index (int): Label value excluded from both terms.
        include_background (bool): Whether class 0 enters the mean.
        batch_dice (bool): Sum over the whole batch (nnU-Net's batch Dice)
            instead of averaging per image; steadier when a class covers few
            pixels of a slice.
        smooth (float): Added to numerator and denominator.

    Returns:
        Tensor: Scalar loss.
    """
    logits = logits.float()  # also under mixed precision
    num_classes = logits.shape[1]
    valid = (target != ignore_index).unsqueeze(1).to(logits.dtype)
    probs = logits.softmax(dim=1) * valid
    onehot = F.one_hot(target.clamp(0, num_classes - 1).long(), num_classes)
    onehot = onehot.permute(0, 3, 1, 2).to(logits.dtype) * valid
    dims = (0, 2, 3) if batch_dice else (2, 3)
    inter = (probs * onehot).sum(dims)
    denom = probs.sum(dims) + onehot.sum(dims)
    dice = (2 * inter + smooth) / (denom + smooth)
    if not include_background:
        dice = dice[..., 1:]
    return 1 - dice.mean()


@MODELS.register_module()
class SoftDiceLoss(nn.Module):
    """Per-class soft Dice loss over softmax probabilities.

    Unlike mmseg's ``DiceLoss`` (one Dice over all classes flattened
    together, dominated by large classes), every class gets its own Dice
    and the loss is their mean, as is usual for medical segmentation.

    Args:
        loss_weight (float): Multiplier of the loss. Defaults to 1.0.
        ignore_index (int): Label value to ignore. Defaults to 255.
        include_background (bool): Whether class 0 counts. Defaults to False.
        batch_dice (bool): Compute Dice over the whole batch. Defaults to
            True.
        smooth (float): Smoothing term. Defaults to 1e-5.
        loss_name (str): Name of the loss item; must start with ``loss_``.
    """

    def __init__(self,
                 loss_weight: float = 1.0,
                 ignore_index: int = 255,
                 include_background: bool = False,
                 batch_dice: bool = True,
                 smooth: float = 1e-5,
                 loss_name: str = 'loss_dice') -> None:
        super().__init__()
        self.loss_weight = loss_weight
        self.ignore_index = ignore_index
        self.include_background = include_background
        self.batch_dice = batch_dice
        self.smooth = smooth
        self._loss_name = loss_name

    def forward(self,
                pred: torch.Tensor,
                target: torch.Tensor,
                weight: Optional[torch.Tensor] = None,
                ignore_index: Optional[int] = None,
                **kwargs) -> torch.Tensor:
        """Compute the loss.

        Args:
            pred (Tensor): Logits (N, K, H, W).
            target (Tensor): Labels (N, H, W).
            weight (Tensor, optional): Unused; kept for mmseg's decode head
                call signature.
            ignore_index (int, optional): Overrides ``self.ignore_index``.

        Returns:
            Tensor: The weighted loss.
        """
        ignore = self.ignore_index if ignore_index is None else ignore_index
        return self.loss_weight * soft_dice_loss(
            pred, target, ignore, self.include_background, self.batch_dice,
            self.smooth)

    @property
    def loss_name(self) -> str:
        """str: Name of the loss item."""
        return self._loss_name
