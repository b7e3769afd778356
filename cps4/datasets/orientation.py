"""Axis orientation of volumes: bring a volume to a dataset's orientation
and back.

Scanners and export tools store the same anatomy with the array axes in
any of 48 orders and directions; only the affine says which is which. The
converters bring every case of a dataset to one orientation (the
``orientation`` of ``dataset.json``, else the one most of its cases
already have), so that the slice axis and the in-plane directions mean the
same in every case; :func:`cps4.apis.inference_volume` brings an input
volume to the orientation the model was trained in and its mask back to the
input's own array order.

Orientations are written as nibabel axis codes: one letter per array axis
naming the world direction the axis points to (``'RAS'``, ``'IPR'``...).
Only permutations and flips of whole axes are applied (the nearest ones for
an oblique affine), so voxels are never resampled.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence, Tuple

import numpy as np
from nibabel.orientations import (aff2axcodes, apply_orientation,
                                  axcodes2ornt, inv_ornt_aff, io_orientation,
                                  ornt_transform)

from cps4.utils.fileio import DatasetFormatError

Axcodes = Tuple[str, str, str]

_OPPOSITE = dict(zip('RLAPSI', 'LRPAIS'))


def orientation_of(affine: np.ndarray) -> Axcodes:
    """The axis codes of an affine (e.g. ``('I', 'P', 'R')``).

    Args:
        affine (np.ndarray): 4x4 array-index to RAS+ mm matrix.

    Returns:
        tuple[str, str, str]: One world direction letter per array axis.
    """
    return tuple(aff2axcodes(np.asarray(affine, dtype=np.float64)))


def check_axcodes(codes, display: str = 'orientation') -> Axcodes:
    """Validate axis codes given by a user (``'RAS'`` or a sequence).

    Args:
        codes (str | Sequence[str]): Three letters, one of R/L, A/P, S/I
            each.
        display (str): Name used in the error message.

    Returns:
        tuple[str, str, str]: The upper-case codes.

    Raises:
        DatasetFormatError: Not three letters covering the three world axes.
    """
    letters = tuple(str(c).upper() for c in codes)
    axes = sorted(min(c, _OPPOSITE.get(c, c)) for c in letters)
    if len(letters) != 3 or any(c not in _OPPOSITE for c in letters) or (
            axes != ['A', 'I', 'L']):
        raise DatasetFormatError(
            f'{display}: {"".join(map(str, codes))!r} is not an orientation; '
            "give three letters, one of R/L, A/P and S/I each (e.g. 'RAS' "
            "or 'IPR')")
    return letters


@dataclass(frozen=True)
class Reorientation:
    """A permutation/flip of array axes between two orientations.

    Attributes:
        source_shape (tuple[int, int, int]): Shape of the array as stored.
        source (np.ndarray): nibabel ``ornt`` of the stored array.
        target (np.ndarray): nibabel ``ornt`` of the target orientation.
    """

    source_shape: Tuple[int, int, int]
    source: np.ndarray
    target: np.ndarray

    @property
    def transform(self) -> np.ndarray:
        """nibabel ``ornt`` from the stored to the target array order."""
        return ornt_transform(self.source, self.target)

    @property
    def is_identity(self) -> bool:
        """True when the stored array is already in the target order."""
        return bool(
            np.array_equal(self.transform[:, 0], np.arange(3))
            and np.all(self.transform[:, 1] == 1))

    @property
    def target_shape(self) -> Tuple[int, int, int]:
        """Shape of the array in the target orientation."""
        shape = [0, 0, 0]
        for axis, (new_axis, _) in enumerate(self.transform):
            shape[int(new_axis)] = self.source_shape[axis]
        return tuple(shape)

    def apply(self, array: np.ndarray) -> np.ndarray:
        """Stored array (extra trailing axes allowed) -> target order."""
        if self.is_identity:
            return array
        return np.ascontiguousarray(apply_orientation(array, self.transform))

    def undo(self, array: np.ndarray) -> np.ndarray:
        """Target-order array (extra trailing axes allowed) -> stored order.
        """
        if self.is_identity:
            return array
        inverse = ornt_transform(self.target, self.source)
        return np.ascontiguousarray(apply_orientation(array, inverse))

    def affine(self, affine: np.ndarray) -> np.ndarray:
        """The affine of the reoriented array (same world geometry)."""
        return np.asarray(affine, dtype=np.float64) @ inv_ornt_aff(
            self.transform, self.source_shape)

    def spacing(self, spacing: Sequence[float]) -> Tuple[float, ...]:
        """Voxel spacing in the target axis order."""
        out = [0.0, 0.0, 0.0]
        for axis, (new_axis, _) in enumerate(self.transform):
            out[int(new_axis)] = float(spacing[axis])
        return tuple(out)


def reorientation(affine: np.ndarray, shape: Sequence[int],
                  target: Sequence[str]) -> Reorientation:
    """The axis permutation/flips that bring a volume to ``target``.

    Args:
        affine (np.ndarray): The stored volume's 4x4 affine.
        shape (Sequence[int]): Its 3D array shape.
        target (Sequence[str]): Target axis codes, e.g. ``'IPR'``.

    Returns:
        Reorientation: Apply it to the array (and its affine and spacing).
    """
    return Reorientation(
        source_shape=tuple(int(s) for s in shape[:3]),
        source=io_orientation(np.asarray(affine, dtype=np.float64)),
        target=axcodes2ornt(check_axcodes(target)))


def match_grid(affine: np.ndarray,
               shape: Sequence[int],
               ref_affine: np.ndarray,
               ref_shape: Sequence[int],
               tolerance: float = 1e-2) -> Optional[Reorientation]:
    """Whether two volumes sample the same voxel centres, in any axis order.

    Used to pair a mask with its image: a mask stored with its axes
    permuted or flipped (and its affine saying so) lies on the image's grid
    once reoriented; a mask whose affine differs in spacing, origin or
    direction does not.

    Args:
        affine (np.ndarray): 4x4 affine of the volume to match (the mask).
        shape (Sequence[int]): Its 3D array shape.
        ref_affine (np.ndarray): 4x4 affine of the reference (the image).
        ref_shape (Sequence[int]): The reference's 3D array shape.
        tolerance (float): Largest allowed difference of any voxel centre,
            in units of the reference's smallest voxel size. Defaults to
            0.01.

    Returns:
        Reorientation | None: The reorientation that brings the volume to
        the reference's array order, or None when the grids differ.
    """
    ref_affine = np.asarray(ref_affine, dtype=np.float64)
    r = reorientation(affine, shape, orientation_of(ref_affine))
    if r.target_shape != tuple(int(s) for s in ref_shape[:3]):
        return None
    diff = r.affine(affine) - ref_affine
    # voxel centres at the far corner differ by at most this much
    corner = np.abs(diff[:3, :3]) @ np.asarray(ref_shape[:3], float)
    err = np.abs(diff[:3, 3]) + corner
    voxel = np.sqrt((ref_affine[:3, :3]**2).sum(0)).min()
    return r if float(err.max()) <= tolerance * voxel else None


__all__ = [
    'Axcodes', 'Reorientation', 'check_axcodes', 'match_grid',
    'orientation_of', 'reorientation'
]
