from .cutmix import cutmix, cutmix_boxes
from .label_components import largest_component_share
from .rampup import (current_iter, linear_rampup, rampup_factor,
                     sigmoid_rampup)
from .segmentor_outputs import num_classes_of, predict_probs, segmentor_logits

__all__ = [
    'cutmix', 'cutmix_boxes', 'current_iter', 'largest_component_share',
    'linear_rampup',
    'num_classes_of', 'predict_probs', 'rampup_factor', 'segmentor_logits',
    'sigmoid_rampup'
]
