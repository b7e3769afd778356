"""What an SSL strategy may use: the networks and three functions, and,
for strategies that mix labelled into unlabelled images, the labelled
batch."""
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Tuple

import torch.nn as nn
from torch import Tensor

from ..utils import cutmix, predict_probs, segmentor_logits


@dataclass(frozen=True)
class SemiNetworks:
    """The networks of a semi-supervised segmentor, as a strategy sees them.

    A strategy never holds the segmentor: it gets this view, whose methods
    are the only operations it needs besides its own loss arithmetic.

    Attributes:
        student (nn.Module): The network trained by gradient.
        teacher (nn.Module): The EMA copy of the student (eval mode).
        peer (nn.Module, optional): The second student of two-student
            methods (``needs_peer``), else None.
        cutmix_prob (float): ``semi_train_cfg.cutmix_prob``.
    """

    student: nn.Module
    teacher: nn.Module
    peer: Optional[nn.Module] = None
    cutmix_prob: float = 0.0

    def logits(self,
               net: nn.Module,
               inputs: Tensor,
               feature_dropout: float = 0.0) -> Tensor:
        """Float32 logits of ``net`` at the input size (see
        :func:`cps4.models.utils.segmentor_logits`)."""
        return segmentor_logits(net, inputs, feature_dropout)

    def probs(self,
              net: nn.Module,
              inputs: Tensor,
              eval_mode: bool = True) -> Tensor:
        """Softmax of ``net`` without gradient (see
        :func:`cps4.models.utils.predict_probs`)."""
        return predict_probs(net, inputs, eval_mode)

    def cutmix(self, inputs: Tensor, targets: Sequence[Dict[str, Tensor]]
               ) -> Tuple[Tensor, List[Dict[str, Tensor]]]:
        """CutMix of images and targets with :attr:`cutmix_prob` (see
        :func:`cps4.models.utils.cutmix`)."""
        return cutmix(inputs, targets, self.cutmix_prob)


@dataclass(frozen=True)
class LabelledBatch:
    """The labelled half of a batch, as a strategy with ``uses_labelled``
    gets it (e.g. bidirectional copy-paste, which pastes labelled and
    unlabelled images into each other).

    Attributes:
        inputs (Tensor): Normalised images (B, C, H, W) of the ``sup``
            branch.
        labels (Tensor): Their ground truth (B, H, W), int64; 255 marks
            ignored pixels.
    """

    inputs: Tensor
    labels: Tensor
