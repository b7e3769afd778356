from .dump_volume_predictions import DumpVolumePredictions
from .volume_dice_metric import VolumeDiceMetric

__all__ = ['DumpVolumePredictions', 'VolumeDiceMetric']
