"""Product of experts fusion."""
from typing import Dict

from mmseg.registry import MODELS
from torch import Tensor

from .base_fusion import BaseFusion


@MODELS.register_module()
class ProductFusion(BaseFusion):
    r"""Product of teacher and VLM distributions.

    .. math::

        q(k) \propto q_t(k) \, q_v(k)^{\alpha}, \qquad
        q_v = B / \textstyle\sum_j B_j,

    confidence :math:`\max_k q(k)`. A unit the VLM rules out loses its
    teacher probability; where the VLM is flat the teacher decides.

    Args:
        alpha (float): Exponent of the VLM term (0 gives the teacher back).
            Defaults to 1.0.
    """

    def __init__(self, alpha: float = 1.0) -> None:
        super().__init__()
        if alpha < 0:
            raise ValueError(f'ProductFusion: alpha must be >= 0, got {alpha}')
        self.alpha = alpha

    def fuse(self, teacher_probs: Tensor, vlm_maps: Tensor,
             vlm_labels: Tensor) -> Dict[str, Tensor]:
        q = teacher_probs * self.vlm_distribution(vlm_maps)**self.alpha
        q = q / q.sum(1, keepdim=True).clamp_min(1e-12)
        return dict(probs=q, confidence=q.max(1)[0])
