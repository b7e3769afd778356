"""Agreement-only fusion."""
from typing import Dict

from mmseg.registry import MODELS
from torch import Tensor

from .base_fusion import BaseFusion


@MODELS.register_module()
class AgreementFusion(BaseFusion):
    r"""Keep the teacher's pseudo label only where the VLM names the same class.

    ``probs`` is the teacher's :math:`q_t` unchanged and the confidence
    :math:`\max_k q_t(k)`; ``valid`` is true only where
    :math:`\arg\max_k q_t(k)` equals the VLM's unified label, so
    disagreeing pixels drop out of the unsupervised loss at every
    threshold, 0 included (Mean Teacher's soft target).
    """

    def fuse(self, teacher_probs: Tensor, vlm_maps: Tensor,
             vlm_labels: Tensor) -> Dict[str, Tensor]:
        conf, labels = teacher_probs.max(1)
        agree = labels == vlm_labels
        return dict(probs=teacher_probs, confidence=conf, valid=agree)
