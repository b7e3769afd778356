"""Confidence-weighted mean fusion."""
from typing import Dict

from mmseg.registry import MODELS
from torch import Tensor

from .base_fusion import BaseFusion


@MODELS.register_module()
class ConfidenceWeightedFusion(BaseFusion):
    r"""Mean of teacher and VLM distributions, weighted by their confidence.

    .. math::

        q = \frac{c_t q_t + w c_v q_v}{c_t + w c_v}, \qquad
        c_t = \max_k q_t(k), \; c_v = \max_k B_k,

    per pixel, with :math:`q_v = B / \sum_j B_j`; confidence
    :math:`\max_k q(k)`.

    Args:
        vlm_weight (float): :math:`w`, the trust in the VLM relative to the
            teacher. Defaults to 1.0.
    """

    def __init__(self, vlm_weight: float = 1.0) -> None:
        super().__init__()
        if vlm_weight < 0:
            raise ValueError('ConfidenceWeightedFusion: vlm_weight must be '
                             f'>= 0, got {vlm_weight}')
        self.vlm_weight = vlm_weight

    def fuse(self, teacher_probs: Tensor, vlm_maps: Tensor,
             vlm_labels: Tensor) -> Dict[str, Tensor]:
        c_t = teacher_probs.max(1, keepdim=True)[0]
        c_v = self.vlm_weight * vlm_maps.max(1, keepdim=True)[0]
        q_v = self.vlm_distribution(vlm_maps)
        q = (c_t * teacher_probs + c_v * q_v) / (c_t + c_v).clamp_min(1e-12)
        return dict(probs=q, confidence=q.max(1)[0])
