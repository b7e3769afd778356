"""Per-case intensity normalisation of MR volumes to uint8.

The converters store image slices normalised this way, and inference
prepares a volume the same way, so a model sees the same intensities in
training and at run time: the case is clipped to its [0.5, 99.5]
percentiles and scaled linearly to 0..255.
"""
from __future__ import annotations

from typing import Tuple

import numpy as np

from cps4.utils.fileio import DatasetFormatError

#: Percentiles clipped by :func:`normalize_intensity`.
INTENSITY_PERCENTILES = (0.5, 99.5)


def intensity_window(image: np.ndarray,
                     display: str = 'image') -> Tuple[float, float]:
    """The [0.5, 99.5] percentile window of one case's intensities.

    When the percentile range is empty (e.g. more than 99.5% of voxels share
    one value) but the image is not constant, the min/max range is used.

    Args:
        image (np.ndarray): Intensities of one case (any shape).
        display (str): File name for error messages.

    Returns:
        tuple: ``(lo, hi)`` with ``hi > lo``.

    Raises:
        DatasetFormatError: The image holds NaN/Inf or is constant.
    """
    image = np.asarray(image, dtype=np.float32)
    n_bad = 0
    for plane in image.reshape(image.shape[0], -1) if image.ndim else [image]:
        n_bad += int(plane.size - np.count_nonzero(np.isfinite(plane)))
    if n_bad:
        raise DatasetFormatError(
            f'{display}: {n_bad} voxels are NaN or infinite; fix or '
            're-export the image')
    lo, hi = np.percentile(image, INTENSITY_PERCENTILES)
    if not hi > lo:
        lo, hi = float(image.min()), float(image.max())
    if not hi > lo:
        raise DatasetFormatError(
            f'{display}: the image is constant (every voxel is {lo:g}); it '
            'holds no data, remove the case or fix the file')
    return lo, hi


def apply_intensity_window(image: np.ndarray, lo: float,
                           hi: float) -> np.ndarray:
    """Clip ``image`` to ``[lo, hi]`` and scale it to uint8 0..255.

    Element-wise, so a volume may be scaled in pieces (e.g. slice by slice
    to bound the memory) with the same result as at once.
    """
    image = np.asarray(image, dtype=np.float32)
    scaled = (np.clip(image, lo, hi) - lo) * (255.0 / (hi - lo))
    return np.rint(scaled).astype(np.uint8)


def normalize_intensity(image: np.ndarray,
                        display: str = 'image') -> np.ndarray:
    """Clip to the [0.5, 99.5] percentiles and scale to uint8 0..255.

    :func:`intensity_window` then :func:`apply_intensity_window`.

    Args:
        image (np.ndarray): Intensities of one case (any shape).
        display (str): File name for error messages.

    Returns:
        np.ndarray: uint8 array of the same shape.

    Raises:
        DatasetFormatError: The image holds NaN/Inf or is constant.
    """
    image = np.asarray(image, dtype=np.float32)
    lo, hi = intensity_window(image, display)
    return apply_intensity_window(image, lo, hi)
