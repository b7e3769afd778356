"""UniMatch (Yang et al., CVPR 2023)."""
from typing import Dict, List

from mmseg.registry import MODELS
from torch import Tensor

from .base_ssl_strategy import BaseSSLStrategy
from .semi_networks import SemiNetworks


@MODELS.register_module()
class UniMatch(BaseSSLStrategy):
    """FixMatch with two strong views and a feature-perturbed weak view.

    Two image-level streams (each strong view with its own CutMix) and one
    feature-level stream (the weak view's encoder features through
    channel dropout, then the decode head) learn the same thresholded
    pseudo labels:

    ``loss = (1 - fp_weight) * (ce(s1) + ce(s2)) / 2 + fp_weight * ce(fp)``

    returned as ``loss_unsup_s1``, ``loss_unsup_s2``, ``loss_unsup_fp``,
    already weighted. https://arxiv.org/abs/2208.09910

    Args:
        fp_weight (float): Share of the feature-perturbation stream.
            Defaults to 0.5 (the paper's).
        fp_dropout (float): Channel dropout rate on the features.
            Defaults to 0.5.
    """

    strong_branches = ('unsup_student', 'unsup_student_2')

    def __init__(self, fp_weight: float = 0.5, fp_dropout: float = 0.5):
        if not 0 <= fp_weight <= 1 or not 0 <= fp_dropout < 1:
            raise ValueError('UniMatch: need 0 <= fp_weight <= 1 and '
                             f'0 <= fp_dropout < 1, got {fp_weight}, '
                             f'{fp_dropout}')
        self.fp_weight = fp_weight
        self.fp_dropout = fp_dropout

    def unsup_loss(self, nets: SemiNetworks, strong_inputs: List[Tensor],
                   targets: List[dict],
                   weak_inputs: Tensor) -> Dict[str, Tensor]:
        if len(strong_inputs) != 2:
            raise ValueError(
                'UniMatch needs two strong views (branches '
                f'{self.strong_branches}); add unsup_student_2 to the '
                'MultiBranch transform of the unlabelled pipeline.')
        w_img = (1 - self.fp_weight) / 2
        # each strong view gets its own CutMix boxes
        x1, (t1, ) = nets.cutmix(strong_inputs[0], targets[:1])
        x2, (t2, ) = nets.cutmix(strong_inputs[1], targets[:1])
        s1 = nets.logits(nets.student, x1)
        s2 = nets.logits(nets.student, x2)
        fp = nets.logits(
            nets.student, weak_inputs, feature_dropout=self.fp_dropout)
        return dict(
            loss_unsup_s1=w_img * self.masked_ce(s1, t1),
            loss_unsup_s2=w_img * self.masked_ce(s2, t2),
            loss_unsup_fp=self.fp_weight * self.masked_ce(fp, targets[0]))

    def __repr__(self) -> str:
        return (f'{type(self).__name__}(fp_weight={self.fp_weight}, '
                f'fp_dropout={self.fp_dropout})')
