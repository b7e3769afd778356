from .functional import aggregate_dice, dice_per_class, hd95_per_class
from .metrics import *  # noqa: F401,F403

__all__ = ['aggregate_dice', 'dice_per_class', 'hd95_per_class',
           'DumpVolumePredictions', 'VolumeDiceMetric']
