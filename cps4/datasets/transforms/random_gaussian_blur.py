"""Gaussian blur with a random width."""
import numpy as np
from mmcv.transforms import BaseTransform
from mmseg.registry import TRANSFORMS
from scipy.ndimage import gaussian_filter


@TRANSFORMS.register_module()
class RandomGaussianBlur(BaseTransform):
    """Blur the image (not the labels) with a random Gaussian sigma.

    Args:
        sigma_range (tuple[float, float]): Range of sigma in pixels.
            Defaults to (0.1, 1.5).
        prob (float): Probability of applying it. Defaults to 0.5.
    """

    def __init__(self, sigma_range=(0.1, 1.5), prob: float = 0.5) -> None:
        lo, hi = sigma_range
        if not 0 < lo <= hi:
            raise ValueError(f'RandomGaussianBlur: sigma_range must satisfy '
                             f'0 < low <= high, got {sigma_range}')
        self.sigma_range = (float(lo), float(hi))
        self.prob = prob

    def transform(self, results: dict) -> dict:
        if np.random.rand() >= self.prob:
            return results
        img = results['img'].astype(np.float32)
        sigma = np.random.uniform(*self.sigma_range)
        # blur the two spatial axes only, never across channels
        sigmas = (sigma, sigma) + (0, ) * (img.ndim - 2)
        results['img'] = gaussian_filter(img, sigma=sigmas)
        return results

    def __repr__(self) -> str:
        return (f'{type(self).__name__}(sigma_range={self.sigma_range}, '
                f'prob={self.prob})')
