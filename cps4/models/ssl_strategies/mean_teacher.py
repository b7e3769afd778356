"""Mean Teacher (Tarvainen and Valpola, NeurIPS 2017)."""
from typing import Dict, List

from mmseg.registry import MODELS
from torch import Tensor

from .base_ssl_strategy import BaseSSLStrategy
from .semi_networks import SemiNetworks


@MODELS.register_module()
class MeanTeacher(BaseSSLStrategy):
    """Consistency between student (strong view) and EMA teacher (weak view).

    ``loss_unsup_mse`` is the squared error between the student's softmax
    and the target distribution ``probs`` (the teacher's, or the fused one
    under CPS4), weighted by the confidence mask (all ones with
    ``pseudo_threshold=0``). https://arxiv.org/abs/1703.01780
    """

    def unsup_loss(self, nets: SemiNetworks, strong_inputs: List[Tensor],
                   targets: List[dict],
                   weak_inputs: Tensor) -> Dict[str, Tensor]:
        x, (target, ) = nets.cutmix(strong_inputs[0], targets[:1])
        logits = nets.logits(nets.student, x)
        return dict(loss_unsup_mse=self.masked_mse(logits, target))
