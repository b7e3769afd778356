"""Random gamma correction of MR intensities."""
import numpy as np
from mmcv.transforms import BaseTransform
from mmseg.registry import TRANSFORMS


@TRANSFORMS.register_module()
class RandomGamma(BaseTransform):
    """Apply ``x' = lo + (hi - lo) * ((x - lo) / (hi - lo)) ** g``.

    ``lo`` and ``hi`` are the image's own minimum and maximum, so the
    intensity range is kept; ``g`` is drawn log-uniformly from
    ``gamma_range``. Labels are untouched.

    Args:
        gamma_range (tuple[float, float]): Range of ``g``. Defaults to
            (0.7, 1.5).
        prob (float): Probability of applying it. Defaults to 0.5.
    """

    def __init__(self, gamma_range=(0.7, 1.5), prob: float = 0.5) -> None:
        lo, hi = gamma_range
        if not 0 < lo <= hi:
            raise ValueError(f'RandomGamma: gamma_range must satisfy '
                             f'0 < low <= high, got {gamma_range}')
        self.gamma_range = (float(lo), float(hi))
        self.prob = prob

    def transform(self, results: dict) -> dict:
        if np.random.rand() >= self.prob:
            return results
        img = results['img'].astype(np.float32)
        lo, hi = float(img.min()), float(img.max())
        if hi > lo:
            g = float(np.exp(np.random.uniform(*np.log(self.gamma_range))))
            img = lo + (hi - lo) * ((img - lo) / (hi - lo))**g
        results['img'] = img
        return results

    def __repr__(self) -> str:
        return (f'{type(self).__name__}(gamma_range={self.gamma_range}, '
                f'prob={self.prob})')
