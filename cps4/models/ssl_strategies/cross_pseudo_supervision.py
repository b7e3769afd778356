"""Cross Pseudo Supervision (Chen et al., CVPR 2021)."""
from typing import Dict, List

from mmseg.registry import MODELS
from torch import Tensor

from .base_ssl_strategy import BaseSSLStrategy
from .semi_networks import SemiNetworks


@MODELS.register_module()
class CrossPseudoSupervision(BaseSSLStrategy):
    """Two differently initialised students teach each other.

    On the weak view each student predicts (no gradient); the other one
    learns those hard labels on the strong view. Both students get the
    supervised loss. The EMA teacher follows ``student`` and is what
    validation scores by default. https://arxiv.org/abs/2106.01226

    Targets are built from ``[peer probs, student probs]``: the first
    trains ``student``, the second ``peer``.
    """

    needs_peer = True

    def teacher_probs(self, nets: SemiNetworks,
                      weak_inputs: Tensor) -> List[Tensor]:
        return [
            nets.probs(nets.peer, weak_inputs, eval_mode=False),
            nets.probs(nets.student, weak_inputs, eval_mode=False)
        ]

    def unsup_loss(self, nets: SemiNetworks, strong_inputs: List[Tensor],
                   targets: List[dict],
                   weak_inputs: Tensor) -> Dict[str, Tensor]:
        # one set of CutMix boxes for the shared strong view
        x, (for_student, for_peer) = nets.cutmix(strong_inputs[0], targets)
        student = nets.logits(nets.student, x)
        peer = nets.logits(nets.peer, x)
        return dict(
            loss_unsup_cps_student=self.masked_ce(student, for_student),
            loss_unsup_cps_peer=self.masked_ce(peer, for_peer))
