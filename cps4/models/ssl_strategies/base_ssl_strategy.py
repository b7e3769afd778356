"""Interface every semi-supervised strategy implements."""
from typing import Dict, List, Optional

import torch.nn.functional as F
from torch import Tensor

from .semi_networks import LabelledBatch, SemiNetworks


class BaseSSLStrategy:
    """How one SSL method turns unlabelled weak/strong views into a loss.

    :class:`cps4.models.SemiBaseSegmentor` owns the networks (``student``,
    its EMA ``teacher`` and, when :attr:`needs_peer` is set, a second
    student ``peer``), the supervised loss, the pseudo-label step
    (``get_pseudo_labels``, which :class:`cps4.models.CPS4SemiSegmentor`
    extends with the VLM) and the ramp-up. A strategy sees only a
    :class:`SemiNetworks` view (the networks, ``logits``, ``probs`` and
    ``cutmix``) and supplies the two method-specific steps:

    1. :meth:`teacher_probs`: softmax predictions on the weak view, one
       map per network to be trained (called without gradient);
    2. :meth:`unsup_loss`: the student-side loss on the strong view(s)
       against the targets ``{probs, labels, weight}`` that the segmentor
       built from those predictions, mixing images and targets with
       ``nets.cutmix`` (a no-op unless ``semi_train_cfg.cutmix_prob``).

    A strategy that sets :attr:`uses_labelled` also gets the labelled half
    of the batch in :meth:`unsup_loss` (``labelled``, a
    :class:`LabelledBatch`), e.g. to paste labelled and unlabelled images
    into each other; the others are called without it.

    Adding a method means one subclass in one file, registered in
    ``mmseg.registry.MODELS``, and a config selecting it with
    ``model.ssl_strategy=dict(type=...)``.

    Attributes:
        uses_unlabelled (bool): False skips steps 1 and 2 entirely.
        uses_labelled (bool): :meth:`unsup_loss` gets ``labelled``.
        needs_peer (bool): The segmentor builds a second student ``peer``.
        strong_branches (tuple[str]): Branches holding strong views.
    """

    uses_unlabelled = True
    uses_labelled = False
    needs_peer = False
    strong_branches = ('unsup_student', )

    def teacher_probs(self, nets: SemiNetworks,
                      weak_inputs: Tensor) -> List[Tensor]:
        """Teacher softmax on the weak view: one map (B, K, H, W)."""
        return [nets.probs(nets.teacher, weak_inputs)]

    def unsup_loss(self,
                   nets: SemiNetworks,
                   strong_inputs: List[Tensor],
                   targets: List[dict],
                   weak_inputs: Tensor,
                   labelled: Optional[LabelledBatch] = None
                   ) -> Dict[str, Tensor]:
        """Unweighted unsupervised loss terms (names start with ``loss_``).

        ``labelled`` is given only to strategies with
        :attr:`uses_labelled`.
        """
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

