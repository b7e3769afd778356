# Copyright (c) CPS4 contributors. All rights reserved.
"""Smooth random fields that texture the synthetic tissues."""
from dataclasses import dataclass
from typing import Sequence, Tuple

import numpy as np
from scipy import ndimage

from .params import CaseParams


def smooth_noise(rng: np.random.Generator, shape: Tuple[int, ...],
                  sigma: Sequence[float]) -> np.ndarray:
    """Zero-mean, unit-variance Gaussian random field.

    Wide kernels are applied on a coarser grid that is then linearly
    upsampled, which keeps the cost low for large volumes.

    Args:
        rng (np.random.Generator): Random generator.
        shape (tuple[int]): Output shape.
        sigma (Sequence[float]): Smoothing standard deviation per axis, in
            voxels.

    Returns:
        np.ndarray: float32 random field of the given shape.
    """
    sigma = np.asarray(sigma, dtype=np.float64)
    factor = np.maximum(1, np.floor(sigma / 2.0)).astype(int)
    coarse = tuple(
        int(np.ceil(n / f)) + (2 if f > 1 else 0)
        for n, f in zip(shape, factor))
    field = rng.standard_normal(coarse).astype(np.float32)
    field = ndimage.gaussian_filter(
        field, sigma / factor, mode='wrap', truncate=2.5)
    if any(c != n for c, n in zip(coarse, shape)):
        field = ndimage.zoom(
            field, [n / c for n, c in zip(shape, coarse)], order=1)
        field = field[tuple(slice(0, n) for n in shape)]
    field -= field.mean()
    field /= field.std() + 1e-6
    return field


@dataclass(frozen=True)
class Textures:
    """Zero-mean, unit-variance random fields, ``(H * W, S)`` each.

    Attributes:
        fine (np.ndarray): ~1 mm grain (marrow, nucleus).
        mid (np.ndarray): ~4 mm variation of most tissues.
        coarse (np.ndarray): ~12 mm blobs (bowel contents, fat edges).
        fiber (np.ndarray): Fibres elongated along the rows (muscles,
            nerve roots).
    """

    fine: np.ndarray
    mid: np.ndarray
    coarse: np.ndarray
    fiber: np.ndarray


def make_textures(params: CaseParams, spacing: Sequence[float],
                  rng: np.random.Generator) -> Textures:
    """Random fields used to texture the tissues.

    Args:
        params (CaseParams): Volume shape.
        spacing (Sequence[float]): ``(row, column, slice)`` spacing in mm.
        rng (np.random.Generator): Random generator.

    Returns:
        Textures: The fields.
    """
    sy, _, sz = spacing
    n = params.height * params.width

    def field(sigma_mm_inplane, sigma_mm_row=None, sigma_mm_slice=4.0):
        row = sigma_mm_row if sigma_mm_row is not None else sigma_mm_inplane
        f = smooth_noise(
            rng, params.shape,
            (row / sy, sigma_mm_inplane / sy, sigma_mm_slice / sz))
        return f.reshape(n, params.num_slices)

    fine = field(1.2, sigma_mm_slice=2.0)
    mid = field(4.0)
    coarse = field(12.0, sigma_mm_slice=8.0)
    fiber = field(1.2, sigma_mm_row=9.0, sigma_mm_slice=3.0)
    return Textures(fine=fine, mid=mid, coarse=coarse, fiber=fiber)
