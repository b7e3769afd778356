"""Interface every semi-supervised strategy implements."""
from typing import TYPE_CHECKING, Dict, List

import torch
import torch.nn.functional as F
from torch import Tensor

if TYPE_CHECKING:  # pragma: no cover
    from ..segmentors.semi_base_segmentor import SemiBaseSegmentor


class BaseSSLStrategy:
    """How one SSL method turns unlabelled weak/strong views into a loss.

    :class:`cps4.models.SemiBaseSegmentor` owns the networks (``student``,
    its EMA ``teacher`` and, when :attr:`needs_peer` is set, a second
    student ``peer``), the supervised loss, the pseudo-label step
    (``make_targets``, which :class:`cps4.models.CPS4SemiSegmentor`
    overrides to fuse in the VLM) and the ramp-up. A strategy supplies the
    two method-specific steps, called in this order:

    1. :meth:`teacher_probs`: softmax predictions on the weak view, one
       map per network to be trained (no gradient);
    2. :meth:`unsup_loss`: the student-side loss on the strong view(s)
       against the targets ``{probs, labels, weight}`` that the segmentor
       built from those predictions, mixing images and targets with
       ``model.cutmix`` (a no-op unless ``semi_train_cfg.cutmix_prob``).

    Adding a method means one subclass in one file, registered in
    ``mmseg.registry.MODELS``, and a config selecting it with
    ``model.ssl_strategy=dict(type=...)``.

    Attributes:
        uses_unlabelled (bool): False skips steps 1 and 2 entirely.
        needs_peer (bool): The segmentor builds a second student ``peer``.
        strong_branches (tuple[str]): Branches holding strong views.
    """

    uses_unlabelled = True
    needs_peer = False
    strong_branches = ('unsup_student', )

    def teacher_probs(self, model: 'SemiBaseSegmentor',
                      weak_inputs: Tensor) -> List[Tensor]:
        """Teacher softmax on the weak view: one map (B, K, H, W)."""
        return [model.predict_probs(model.teacher, weak_inputs)]

    def unsup_loss(self, model: 'SemiBaseSegmentor',
                   strong_inputs: List[Tensor], targets: List[dict],
                   weak_inputs: Tensor) -> Dict[str, Tensor]:
        """Unweighted unsupervised loss terms (names start with ``loss_``)."""
        raise NotImplementedError

    @staticmethod
    def masked_ce(logits: Tensor, target: dict) -> Tensor:
        """Cross-entropy against hard pseudo labels, weighted per pixel.

        The sum of ``weight * CE`` is divided by the number of pixels, so
        that pixels below the confidence threshold count as zero (not as
        absent), as in FixMatch and UniMatch.
        """
        ce = F.cross_entropy(logits.float(), target['labels'],
                             reduction='none')
        return (ce * target['weight']).sum() / target['weight'].numel()

    @staticmethod
    def masked_mse(logits: Tensor, target: dict) -> Tensor:
        """Squared error of softmax probabilities against soft targets."""
        diff = (logits.float().softmax(1) - target['probs'])**2
        w = target['weight'].unsqueeze(1)
        return (diff * w).sum() / (w.numel() * diff.shape[1])

    def __repr__(self) -> str:
        return f'{type(self).__name__}()'

