"""Per-class fusion that follows the more reliable expert."""
from typing import Dict

import torch
from mmseg.registry import MODELS
from torch import Tensor

from ..utils import largest_component_share
from .base_fusion import BaseFusion


@MODELS.register_module()
class ReliabilityWeightedFusion(BaseFusion):
    r"""Confidence-weighted vote whose VLM weight is set per class by which
    expert is the more reliable one for that class.

    .. math::

        q(k) \propto c_t\, q_t(k) + w_k\, c_v\, q_v(k), \qquad
        w_k = w \cdot \mathrm{clip}\Big(\frac{r_v(k) - r_t(k)}{m},
        0, 1\Big),

    with :math:`c_t = \max_k q_t(k)`, :math:`c_v = \max_k B_k` and
    :math:`q_v = B / \sum_j B_j` as in :class:`ConfidenceWeightedFusion`.
    The reliability :math:`r_e(k)` of expert :math:`e` for class :math:`k`
    needs no label: it is the share of the class's pixels that lie in the
    largest connected component of the class in each slice (a class names
    one anatomical unit, so a reliable map draws it as one region; a map
    that splits a vertebra between two levels, or gives one level to two
    vertebrae, scores lower), from the hard labels of the batch, averaged
    over iterations with momentum. An expert that does not draw a class
    the other one draws scores 0 for it. Background gets the mean weight of
    the foreground classes.

    Limits: where the teacher is at least as reliable as the VLM on every
    class, :math:`w_k = 0` and the target is the teacher's own
    distribution, i.e. the base method; where the VLM is more reliable by
    at least ``margin`` on every class, the rule is
    ``ConfidenceWeightedFusion(vlm_weight)``.

    Args:
        vlm_weight (float): :math:`w`, the VLM weight of a class on which
            the VLM is clearly the more reliable expert. Defaults to 10
            (the VLM-weighted vote of the benchmark).
        margin (float): :math:`m`, the reliability difference at which the
            VLM gets its full weight. Defaults to 0.1.
        momentum (float): Weight of the past in the running reliability
            (0: this batch only). Defaults to 0.9.
        min_pixels (int): A class with fewer pixels in both experts' maps
            of a batch leaves its running reliability unchanged. Defaults
            to 16.
        foreground_first (bool): Pass the fused distribution through
            :meth:`BaseFusion.foreground_first` (also where it is the
            teacher's own): the foreground mass goes to the likeliest
            foreground class, so a pixel both experts see as a vertebra,
            of different levels, stays foreground. Defaults to False.
    """

    def __init__(self, vlm_weight: float = 10.0, margin: float = 0.1,
                 momentum: float = 0.9, min_pixels: int = 16,
                 foreground_first: bool = False) -> None:
        super().__init__()
        if vlm_weight < 0:
            raise ValueError('ReliabilityWeightedFusion: vlm_weight must be '
                             f'>= 0, got {vlm_weight}')
        if margin <= 0:
            raise ValueError('ReliabilityWeightedFusion: margin must be > 0,'
                             f' got {margin}')
        if not 0 <= momentum < 1:
            raise ValueError('ReliabilityWeightedFusion: momentum must be in'
                             f' [0, 1), got {momentum}')
        self.vlm_weight = float(vlm_weight)
        self.margin = float(margin)
        self.momentum = float(momentum)
        self.min_pixels = int(min_pixels)
        self.use_foreground_first = bool(foreground_first)
        # running reliabilities (teacher, VLM) x classes; NaN: not seen yet
        self.register_buffer('reliability', torch.empty(2, 0),
                             persistent=False)

    def update_reliability(self, teacher_labels: Tensor, vlm_labels: Tensor,
                           num_classes: int) -> Tensor:
        """Fold this batch into the running reliabilities; return them
        (2, K): teacher, VLM.

        A class's batch reliability is the share of its pixels in its
        largest component per slice (0 for a class the map does not draw);
        it enters the running mean when either map draws at least
        ``min_pixels`` of it.
        """
        largest, total = zip(*(largest_component_share(x, num_classes)
                               for x in (teacher_labels, vlm_labels)))
        total = torch.stack(total)
        batch = (torch.stack(largest) / total.clamp_min(1)).float()
        seen = total.max(0)[0] >= self.min_pixels
        running = self.reliability.cpu()
        if running.shape != (2, num_classes):
            running = torch.full((2, num_classes), float('nan'))
        new = torch.where(torch.isnan(running), batch,
                          self.momentum * running
                          + (1 - self.momentum) * batch)
        running = torch.where(seen.expand_as(new), new, running)
        self.reliability = running.to(self.reliability.device)
        return running

    def class_weights(self, reliability: Tensor) -> Tensor:
        """VLM weight per class (K,) from the reliabilities (2, K)."""
        gap = torch.nan_to_num(reliability[1] - reliability[0], nan=0.0)
        w = self.vlm_weight * (gap / self.margin).clamp(0, 1)
        w[0] = w[1:].mean() if len(w) > 1 else 0.0
        return w

    def fuse(self, teacher_probs: Tensor, vlm_maps: Tensor,
             vlm_labels: Tensor) -> Dict[str, Tensor]:
        num_classes = teacher_probs.shape[1]
        reliability = self.update_reliability(
            teacher_probs.max(1).indices, vlm_labels, num_classes)
        w = self.class_weights(reliability).to(teacher_probs.device)
        log = dict(pl_vlm_weight=w[1:].mean() if num_classes > 1 else w[0])
        if not w.any():  # the teacher is the more reliable expert
            q = teacher_probs
        else:
            c_t = teacher_probs.max(1, keepdim=True)[0]
            c_v = vlm_maps.max(1, keepdim=True)[0]
            votes = (c_t * teacher_probs + w.view(1, -1, 1, 1) * c_v
                     * self.vlm_distribution(vlm_maps))
            q = votes / votes.sum(1, keepdim=True).clamp_min(1e-12)
        if self.use_foreground_first:
            q = self.foreground_first(q)
        return dict(probs=q, confidence=q.max(1)[0], log=log)

    def extra_repr(self) -> str:
        return (f'vlm_weight={self.vlm_weight}, margin={self.margin}, '
                f'momentum={self.momentum}, min_pixels={self.min_pixels}, '
                f'foreground_first={self.use_foreground_first}')
