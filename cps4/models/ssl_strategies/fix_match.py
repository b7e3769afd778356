"""FixMatch (Sohn et al., NeurIPS 2020) for segmentation."""
from typing import Dict, List

from mmseg.registry import MODELS
from torch import Tensor

from .base_ssl_strategy import BaseSSLStrategy
from .semi_networks import SemiNetworks


@MODELS.register_module()
class FixMatch(BaseSSLStrategy):
    """Hard pseudo labels from the weak view, learned on the strong view.

    ``loss_unsup_ce`` is the cross-entropy of the student on the strong
    view against the pseudo labels, counting only pixels whose confidence
    reaches ``semi_train_cfg.pseudo_threshold`` (0.95 in the paper).
    https://arxiv.org/abs/2001.07685
    """

    def unsup_loss(self, nets: SemiNetworks, strong_inputs: List[Tensor],
                   targets: List[dict],
                   weak_inputs: Tensor) -> Dict[str, Tensor]:
        x, (target, ) = nets.cutmix(strong_inputs[0], targets[:1])
        logits = nets.logits(nets.student, x)
        return dict(loss_unsup_ce=self.masked_ce(logits, target))
