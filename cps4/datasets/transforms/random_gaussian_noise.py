"""Additive Gaussian noise."""
import numpy as np
from mmcv.transforms import BaseTransform
from mmseg.registry import TRANSFORMS


@TRANSFORMS.register_module()
class RandomGaussianNoise(BaseTransform):
    """Add zero-mean Gaussian noise with a random standard deviation.

    Args:
        std_range (tuple[float, float]): Range of the noise standard
            deviation, in intensity units (0-255 for 8-bit slices).
            Defaults to (0, 10).
        prob (float): Probability of applying it. Defaults to 0.5.
    """

    def __init__(self, std_range=(0.0, 10.0), prob: float = 0.5) -> None:
        lo, hi = std_range
        if not 0 <= lo <= hi:
            raise ValueError(f'RandomGaussianNoise: std_range must satisfy '
                             f'0 <= low <= high, got {std_range}')
        self.std_range = (float(lo), float(hi))
        self.prob = prob

    def transform(self, results: dict) -> dict:
        if np.random.rand() >= self.prob:
            return results
        img = results['img'].astype(np.float32)
        std = np.random.uniform(*self.std_range)
        results['img'] = img + np.random.normal(
            0.0, std, size=img.shape).astype(np.float32)
        return results

    def __repr__(self) -> str:
        return (f'{type(self).__name__}(std_range={self.std_range}, '
                f'prob={self.prob})')
