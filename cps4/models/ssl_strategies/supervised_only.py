"""Supervised-only baseline inside the semi-supervised framework."""
from mmseg.registry import MODELS

from .base_ssl_strategy import BaseSSLStrategy


@MODELS.register_module()
class SupervisedOnly(BaseSSLStrategy):
    """Train the student on the labelled part of each batch only.

    The unlabelled samples of the batch are ignored, so the labelled
    batches, schedule and EMA teacher are exactly those of the SSL
    strategies it is compared with.
    """

    uses_unlabelled = False
