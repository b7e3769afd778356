"""Agreement-only fusion."""
from typing import Dict

from mmseg.registry import MODELS
from torch import Tensor

from .base_fusion import BaseFusion


@MODELS.register_module()
class AgreementFusion(BaseFusion):
    r"""Keep the teacher's pseudo label only where the VLM names the same class.

    ``probs`` is the teacher's :math:`q_t` unchanged; the confidence is
    :math:`\max_k q_t(k)` where :math:`\arg\max_k q_t(k)` equals the VLM's
    unified label and 0 elsewhere, so disagreeing pixels drop out of the
    unsupervised loss for any threshold above 0.
    """

    def fuse(self, teacher_probs: Tensor, vlm_maps: Tensor,
             vlm_labels: Tensor) -> Dict[str, Tensor]:
        conf, labels = teacher_probs.max(1)
        agree = labels == vlm_labels
        return dict(probs=teacher_probs, confidence=conf * agree.float())
