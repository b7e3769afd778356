from .load_hidden_annotations import LoadHiddenAnnotations
from .multi_branch import MultiBranch
from .random_gamma import RandomGamma
from .random_gaussian_blur import RandomGaussianBlur
from .random_gaussian_noise import RandomGaussianNoise
from .random_intensity_scale_shift import RandomIntensityScaleShift

__all__ = [
    'LoadHiddenAnnotations', 'MultiBranch', 'RandomGamma', 'RandomGaussianBlur', 'RandomGaussianNoise',
    'RandomIntensityScaleShift'
]
