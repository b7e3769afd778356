"""Bidirectional copy-paste (BCP; Bai et al., CVPR 2023)."""
from typing import Dict, List, Optional, Tuple

import torch
import torch.nn.functional as F
from mmengine.logging import MessageHub
from mmseg.registry import MODELS
from torch import Tensor

from ..utils import current_iter
from .base_ssl_strategy import BaseSSLStrategy
from .semi_networks import LabelledBatch, SemiNetworks

#: Ground-truth value of ignored pixels.
IGNORE_INDEX = 255


@MODELS.register_module()
class BidirectionalCopyPaste(BaseSSLStrategy):
    """Labelled and unlabelled slices pasted into each other, both ways.

    One box (``patch_ratio`` of each side, random position, the same for
    the whole batch) is cut per iteration. The labelled batch and the weak
    unlabelled batch are each split into halves ``a`` and ``b``, and the
    student is trained on two mixed batches:

    - inward: labelled slices ``a`` with the box taken from unlabelled
      slices ``a``; target: ground truth outside the box, the pseudo
      labels inside;
    - outward: unlabelled slices ``b`` with the box taken from labelled
      slices ``b``; target: the pseudo labels outside, ground truth inside.

    Each batch's loss is ``(Dice + CE) / 2`` computed separately over its
    ground-truth region and its pseudo-label region (each normalised by
    its own area), the pseudo-label region weighted by
    ``unlabelled_weight``; pixels outside the confidence mask
    (``pseudo_threshold``) or ignored in the ground truth count zero.
    Pseudo labels are the targets the segmentor built on the weak view (the
    EMA teacher's argmax, or the fused map under CPS4), so CPS4 sits on
    BCP as on the other strategies.

    As in the paper, the first ``pretrain_ratio`` of the run is
    pre-training on labelled slices only: the box of labelled slices ``b``
    is pasted into labelled slices ``a`` and both regions are ground truth
    (weight 1), so the EMA teacher has learnt the labelled data before its
    pseudo labels are used (``loss_unsup_bcp_pre``). The length comes from
    the runner's ``max_iters`` (MessageHub); outside a runner there is no
    pre-training. The supervised loss of the ``sup`` branch trains
    throughout, and the ramp-up of ``unsup_weight`` scales both phases.
    Only the weak view is used: BCP has no strong augmentation.
    https://arxiv.org/abs/2305.00673

    Args:
        patch_ratio (float): Side of the pasted box as a fraction of the
            image side, in (0, 1). Defaults to 2/3 (the paper's).
        unlabelled_weight (float): Weight of the pseudo-label region
            against the ground-truth region. Defaults to 0.5 (the paper's).
        pretrain_ratio (float): Share of the training iterations spent on
            the labelled-only pre-training, in [0, 1). Defaults to 0.25
            (the paper's 10k of 40k iterations on ACDC).
    """

    uses_labelled = True
    strong_branches = ()

    def __init__(self, patch_ratio: float = 2 / 3,
                 unlabelled_weight: float = 0.5,
                 pretrain_ratio: float = 0.25) -> None:
        if not 0 < patch_ratio < 1:
            raise ValueError(f'patch_ratio must be in (0, 1), got '
                             f'{patch_ratio!r}')
        if unlabelled_weight < 0:
            raise ValueError('unlabelled_weight must be >= 0, got '
                             f'{unlabelled_weight!r}')
        if not 0 <= pretrain_ratio < 1:
            raise ValueError('pretrain_ratio must be in [0, 1), got '
                             f'{pretrain_ratio!r}')
        self.patch_ratio = float(patch_ratio)
        self.unlabelled_weight = float(unlabelled_weight)
        self.pretrain_ratio = float(pretrain_ratio)

    def pretraining(self) -> bool:
        """Whether the runner's current iteration is in the pre-training
        share of the run."""
        it = current_iter()
        max_iters = MessageHub.get_current_instance().get_info('max_iters')
        return (it is not None and bool(max_iters)
                and it < self.pretrain_ratio * max_iters)

    def box_mask(self, height: int, width: int, device=None) -> Tensor:
        """Bool mask (H, W), True inside one random box."""
        h = max(1, int(height * self.patch_ratio))
        w = max(1, int(width * self.patch_ratio))
        y = int(torch.randint(0, height - h + 1, ()))
        x = int(torch.randint(0, width - w + 1, ()))
        box = torch.zeros(height, width, dtype=torch.bool, device=device)
        box[y:y + h, x:x + w] = True
        return box

    @staticmethod
    def halves(n_labelled: int, n_unlabelled: int) -> Tuple[slice, slice]:
        """Index ranges ``a`` and ``b`` of both batches (the same range
        twice when a batch holds a single slice)."""
        n = min(n_labelled, n_unlabelled)
        if n < 2:
            return slice(0, 1), slice(0, 1)
        half = n // 2
        return slice(0, half), slice(half, 2 * half)

    def unsup_loss(self,
                   nets: SemiNetworks,
                   strong_inputs: List[Tensor],
                   targets: List[dict],
                   weak_inputs: Tensor,
                   labelled: Optional[LabelledBatch] = None
                   ) -> Dict[str, Tensor]:
        if labelled is None:
            raise ValueError('BidirectionalCopyPaste needs the labelled '
                             'batch (labelled=...)')
        if labelled.inputs.shape[-2:] != weak_inputs.shape[-2:]:
            raise ValueError(
                'BidirectionalCopyPaste pastes labelled and unlabelled '
                'slices into each other, so both need one size; got '
                f'{tuple(labelled.inputs.shape[-2:])} and '
                f'{tuple(weak_inputs.shape[-2:])} (crop both pipelines to '
                'the same size)')
        target = targets[0]
        gt = labelled.labels
        gt_valid = (gt != IGNORE_INDEX).float()
        gt = torch.where(gt == IGNORE_INDEX, torch.zeros_like(gt), gt)
        a, b = self.halves(len(gt), len(weak_inputs))
        box = self.box_mask(*gt.shape[-2:], device=gt.device)
        inside = box.float()
        if self.pretraining():
            # labelled slices b pasted into labelled slices a
            x = torch.where(box, labelled.inputs[b], labelled.inputs[a])
            y = torch.where(box, gt[b], gt[a])
            valid = torch.where(box, gt_valid[b], gt_valid[a])
            logits = nets.logits(nets.student, x)
            return dict(loss_unsup_bcp_pre=self._mixed_loss(
                logits, y, (1 - inside) * valid, inside * valid,
                pseudo_weight=1.0))
        pl, pl_weight = target['labels'], target['weight']
        # inward: labelled slices with an unlabelled box
        x_in = torch.where(box, weak_inputs[a], labelled.inputs[a])
        y_in = torch.where(box, pl[a], gt[a])
        gt_w_in = (1 - inside) * gt_valid[a]
        pl_w_in = inside * pl_weight[a]
        # outward: unlabelled slices with a labelled box
        x_out = torch.where(box, labelled.inputs[b], weak_inputs[b])
        y_out = torch.where(box, gt[b], pl[b])
        gt_w_out = inside * gt_valid[b]
        pl_w_out = (1 - inside) * pl_weight[b]

        logits = nets.logits(nets.student, torch.cat([x_in, x_out]))
        n_in = len(x_in)
        return dict(
            loss_unsup_bcp_in=self._mixed_loss(logits[:n_in], y_in,
                                               gt_w_in, pl_w_in),
            loss_unsup_bcp_out=self._mixed_loss(logits[n_in:], y_out,
                                                gt_w_out, pl_w_out))

    def _mixed_loss(self, logits: Tensor, labels: Tensor, gt_weight: Tensor,
                    pl_weight: Tensor,
                    pseudo_weight: Optional[float] = None) -> Tensor:
        """``(Dice + CE) / 2`` of the ground-truth region plus
        ``pseudo_weight`` (default ``unlabelled_weight``) times that of the
        pseudo-label region (the pasted region, in pre-training)."""
        if pseudo_weight is None:
            pseudo_weight = self.unlabelled_weight
        probs = logits.float().softmax(1)
        ce = F.cross_entropy(logits.float(), labels, reduction='none')
        one_hot = F.one_hot(labels, probs.shape[1]).permute(0, 3, 1,
                                                           2).float()
        total = logits.new_zeros((), dtype=torch.float32)
        for weight, scale in ((gt_weight, 1.0), (pl_weight, pseudo_weight)):
            region_ce = (ce * weight).sum() / (weight.sum() + 1e-16)
            region_dice = self.masked_dice_loss(probs, one_hot, weight)
            total = total + scale * (region_ce + region_dice) / 2
        return total

    @staticmethod
    def masked_dice_loss(probs: Tensor, one_hot: Tensor, weight: Tensor,
                         smooth: float = 1e-5) -> Tensor:
        """Soft Dice loss over the pixels of ``weight``, averaged over the
        classes (squared terms in the denominator, as in BCP).

        Args:
            probs (Tensor): Softmax (B, K, H, W).
            one_hot (Tensor): One-hot targets (B, K, H, W).
            weight (Tensor): Pixel weights (B, H, W).
        """
        w = weight.unsqueeze(1)
        inter = (probs * one_hot * w).sum((0, 2, 3))
        denominator = ((probs * probs * w).sum((0, 2, 3))
                       + (one_hot * w).sum((0, 2, 3)))
        return (1 - (2 * inter + smooth) / (denominator + smooth)).mean()

    def __repr__(self) -> str:
        return (f'{type(self).__name__}(patch_ratio={self.patch_ratio:.3f}, '
                f'unlabelled_weight={self.unlabelled_weight}, '
                f'pretrain_ratio={self.pretrain_ratio})')
