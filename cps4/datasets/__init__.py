from .samplers import MultiSourceSampler
from .spine_slice_dataset import SpineSliceDataset
from .synthetic import (SPINE_CLASSES, SPINE_PALETTE, generate_case,
                        write_synthetic_dataset)
from .transforms import (MultiBranch, RandomGamma, RandomGaussianBlur,
                         RandomGaussianNoise, RandomIntensityScaleShift)

__all__ = [
    'SpineSliceDataset', 'SPINE_CLASSES', 'SPINE_PALETTE', 'generate_case',
    'write_synthetic_dataset', 'MultiSourceSampler', 'MultiBranch',
    'RandomGamma', 'RandomGaussianBlur', 'RandomGaussianNoise',
    'RandomIntensityScaleShift'
]
