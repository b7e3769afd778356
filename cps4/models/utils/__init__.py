from .cutmix import cutmix, cutmix_boxes
from .rampup import (current_iter, linear_rampup, rampup_factor,
                     sigmoid_rampup)

__all__ = ['cutmix', 'cutmix_boxes', 'current_iter', 'linear_rampup', 'rampup_factor', 'sigmoid_rampup']
