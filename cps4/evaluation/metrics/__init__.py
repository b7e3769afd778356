from .volume_dice_metric import VolumeDiceMetric

__all__ = ['VolumeDiceMetric']
