# Copyright (c) CPS4 contributors. All rights reserved.
"""MR acquisition effects applied to a painted synthetic case."""
from typing import Tuple

import numpy as np
from scipy import ndimage

from .params import CaseParams


def simulate_acquisition(image: np.ndarray, label: np.ndarray,
                         params: CaseParams, csf_tone: float,
                         rng: np.random.Generator
                         ) -> Tuple[np.ndarray, np.ndarray]:
    """Apply blur, bias field, noise and intensity scaling.

    Partial volume blur, a smooth multiplicative bias field with a posterior
    surface-coil profile, Rician noise scaled to the CSF intensity and a
    random global scaling of the 99.5th percentile.

    Args:
        image (np.ndarray): float32 ``(H * W, S)`` painted intensities.
        label (np.ndarray): uint8 ``(H * W, S)`` labels.
        params (CaseParams): Volume shape.
        csf_tone (float): Mean CSF intensity (sets the noise level).
        rng (np.random.Generator): Random generator.

    Returns:
        tuple[np.ndarray, np.ndarray]: float32 image and uint8 label,
        ``(H, W, S)`` each.
    """
    shape = params.shape
    image = image.reshape(shape)
    label = label.reshape(shape)
    # partial volume / point spread
    image = ndimage.gaussian_filter(
        image,
        (rng.uniform(0.4, 0.8), rng.uniform(0.4, 0.8), rng.uniform(
            0.2, 0.4)),
        truncate=2.5)
    # smooth multiplicative bias with a posterior surface-coil profile
    yy = np.linspace(
        -1.0, 1.0, params.height, dtype=np.float32)[:, None, None]
    xx = np.linspace(
        -1.0, 1.0, params.width, dtype=np.float32)[None, :, None]
    zz = np.linspace(
        -1.0, 1.0, params.num_slices, dtype=np.float32)[None, None, :]
    c = rng.normal(0.0, 1.0, 7) * np.array(
        [0.12, 0.08, 0.08, 0.06, 0.06, 0.05, 0.08])
    coil = rng.uniform(0.1, 0.45)
    log_bias = (
        c[0] * yy + c[1] * xx + c[2] * yy * yy + c[3] * xx * xx +
        c[4] * xx * yy + c[5] * zz - abs(c[6]) * zz * zz + coil * xx)
    image = image * np.exp(log_bias)
    # Rician noise
    sigma = rng.uniform(0.008, 0.03) * csf_tone
    real = image + sigma * rng.standard_normal(shape, dtype=np.float32)
    imag = sigma * rng.standard_normal(shape, dtype=np.float32)
    image = np.sqrt(real * real + imag * imag)
    # global intensity scaling
    reference = np.percentile(image[::2, ::2], 99.5)
    image *= rng.uniform(600.0, 1000.0) / max(reference, 1e-3)
    return image.astype(np.float32), label.astype(np.uint8)
