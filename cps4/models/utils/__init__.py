from .cutmix import cutmix, cutmix_boxes
from .rampup import (current_iter, linear_rampup, rampup_factor,
                     sigmoid_rampup)
from .segmentor_outputs import num_classes_of, predict_probs, segmentor_logits

__all__ = [
    'cutmix', 'cutmix_boxes', 'current_iter', 'linear_rampup',
    'num_classes_of', 'predict_probs', 'rampup_factor', 'segmentor_logits',
    'sigmoid_rampup'
]
