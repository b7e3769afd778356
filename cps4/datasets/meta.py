"""A converted dataset at run time: its ``meta.json``, volumes put back
together from slices, and class indices mapped back to source label values.

The converters (:mod:`cps4.datasets.converters`) write what these read;
datasets, metrics and inference read it without importing the converters.
"""
from __future__ import annotations

from pathlib import Path
from typing import Mapping, Optional, Sequence, Union

import numpy as np

from cps4.utils.fileio import DatasetFormatError, PathLike, read_json

from .orientation import orientation_of


def reassemble_volume(slices: Union[Mapping[int, np.ndarray],
                                    Sequence[np.ndarray]],
                      n_slices: int,
                      slice_axis: int,
                      fill_value: Optional[float] = None) -> np.ndarray:
    """Stack 2D slices back into a volume (inverse of the slicing).

    Args:
        slices (Mapping[int, np.ndarray] | Sequence[np.ndarray]): Slices by
            index, or a sequence whose position is the index.
        n_slices (int): Number of slices of the volume.
        slice_axis (int): Axis the slices were taken along (-3..2).
        fill_value (float, optional): Value for missing slices (e.g. 0 for
            predictions of filtered-out empty slices). Defaults to None:
            missing slices raise.

    Returns:
        np.ndarray: Volume whose ``np.take(volume, i, slice_axis)`` is
        ``slices[i]``.

    Raises:
        ValueError: Indices out of range, missing slices without
            ``fill_value``, or slices of different shapes.
    """
    if not -3 <= slice_axis <= 2:
        raise ValueError(f'slice_axis must be in -3..2, got {slice_axis}')
    if n_slices < 1:
        raise ValueError(f'n_slices must be >= 1, got {n_slices}')
    if not isinstance(slices, Mapping):
        slices = dict(enumerate(slices))
    if not slices:
        raise ValueError('no slices to reassemble')
    bad = sorted(int(i) for i in slices if not 0 <= int(i) < n_slices)
    if bad:
        raise ValueError(
            f'slice indices {bad} are outside 0..{n_slices - 1}')
    arrays = {int(i): np.asarray(s) for i, s in slices.items()}
    shapes = {a.shape for a in arrays.values()}
    if len(shapes) != 1 or len(next(iter(shapes))) != 2:
        raise ValueError(
            f'slices must be 2D arrays of one shape, got shapes '
            f'{sorted(shapes)}')
    missing = [i for i in range(n_slices) if i not in arrays]
    first = arrays[min(arrays)]
    if missing:
        if fill_value is None:
            preview = missing[:20]
            raise ValueError(
                f'{len(missing)} of {n_slices} slices are missing '
                f'(indices {preview}{"..." if len(missing) > 20 else ""}); '
                'pass fill_value to fill them')
        filler = np.full(first.shape, fill_value, dtype=first.dtype)
    stacked = [
        arrays[i] if i in arrays else filler for i in range(n_slices)
    ]
    return np.stack(stacked, axis=slice_axis)


def read_meta(out_dir: PathLike) -> dict:
    """Load and minimally check the ``meta.json`` of a converted dataset.

    Args:
        out_dir (str | PathLike): Converted dataset folder.

    Returns:
        dict: The meta data.
    """
    path = Path(out_dir) / 'meta.json'
    meta = read_json(path)
    missing = [
        k for k in ('classes', 'label_values', 'slice_axis', 'cases')
        if k not in meta
    ]
    if missing:
        raise DatasetFormatError(
            f'{path}: keys {missing} missing; convert the dataset again')
    return meta


def dataset_orientation(meta: Mapping) -> Optional[str]:
    """The axis codes the cases of a converted dataset are stored in.

    ``meta.json`` names it (``orientation``) since the converters bring
    every case to one orientation; for datasets converted before that, it
    is read off the case affines when they all agree. 2D datasets have
    none.

    Args:
        meta (Mapping): A loaded ``meta.json``.

    Returns:
        str | None: Axis codes such as ``'IPR'``, or None when unknown.
    """
    if 'orientation' in meta:
        return meta['orientation']
    if meta.get('layout') == 'png2d':
        return None
    codes = {
        ''.join(orientation_of(np.asarray(case['affine'], dtype=float)))
        for case in meta.get('cases', {}).values() if case.get('affine')
    }
    return codes.pop() if len(codes) == 1 else None


def class_to_source_values(labels: np.ndarray,
                           label_values: Sequence[Optional[int]],
                           display: str = 'labels',
                           ignore_value: Optional[int] = None) -> np.ndarray:
    """Map class indices to source label values.

    Args:
        labels (np.ndarray): Class indices.
        label_values (Sequence[int | None]): Source value of each class.
        display (str): Name for error messages.
        ignore_value (int, optional): Source value of unannotated voxels
            (``meta.json`` ``ignore_value``); index 255 maps back to it.

    Returns:
        np.ndarray: Source values in the smallest fitting integer dtype.
    """
    if ignore_value is not None and np.any(labels == 255):
        ignored = labels == 255
        values = class_to_source_values(np.where(ignored, 0, labels),
                                        label_values, display)
        dtype = np.result_type(values.dtype,
                               np.min_scalar_type(int(ignore_value)))
        values = values.astype(dtype)
        values[ignored] = ignore_value
        return values
    present = np.unique(labels)
    if present.size and int(present.max()) >= len(label_values):
        raise DatasetFormatError(
            f'{display}: class index {int(present.max())} exceeds the '
            f'{len(label_values)} classes of meta.json')
    unmapped = [int(i) for i in present if label_values[int(i)] is None]
    if unmapped:
        raise DatasetFormatError(
            f'{display}: classes {unmapped} have no source label value')
    values = [0 if v is None else int(v) for v in label_values]
    dtype = np.result_type(np.min_scalar_type(min(values)),
                           np.min_scalar_type(max(values)))
    lut = np.asarray(values, dtype=dtype)
    return lut[labels]
