"""Random linear intensity change (contrast and brightness)."""
import numpy as np
from mmcv.transforms import BaseTransform
from mmseg.registry import TRANSFORMS


@TRANSFORMS.register_module()
class RandomIntensityScaleShift(BaseTransform):
    """Apply ``x' = a * x + b`` with random contrast ``a`` and shift ``b``.

    Args:
        scale_range (tuple[float, float]): Range of ``a``. Defaults to
            (0.8, 1.2).
        shift_range (tuple[float, float]): Range of ``b`` in intensity
            units. Defaults to (-20, 20).
        prob (float): Probability of applying it. Defaults to 0.8.
    """

    def __init__(self,
                 scale_range=(0.8, 1.2),
                 shift_range=(-20.0, 20.0),
                 prob: float = 0.8) -> None:
        if not 0 < scale_range[0] <= scale_range[1]:
            raise ValueError('RandomIntensityScaleShift: scale_range must '
                             f'satisfy 0 < low <= high, got {scale_range}')
        if not shift_range[0] <= shift_range[1]:
            raise ValueError('RandomIntensityScaleShift: shift_range must '
                             f'satisfy low <= high, got {shift_range}')
        self.scale_range = tuple(float(v) for v in scale_range)
        self.shift_range = tuple(float(v) for v in shift_range)
        self.prob = prob

    def transform(self, results: dict) -> dict:
        if np.random.rand() >= self.prob:
            return results
        img = results['img'].astype(np.float32)
        a = np.random.uniform(*self.scale_range)
        b = np.random.uniform(*self.shift_range)
        results['img'] = a * img + b
        return results

    def __repr__(self) -> str:
        return (f'{type(self).__name__}(scale_range={self.scale_range}, '
                f'shift_range={self.shift_range}, prob={self.prob})')
