"""Cut volumes into 2D slices, and read a converted case back as a volume.

Conventions shared by the converter and every reader of its output:

* A slice ``i`` along ``slice_axis`` is ``np.take(volume, i, slice_axis)``:
  the two remaining axes keep their array order (rows = first remaining
  axis). :func:`reassemble_volume` is its exact inverse (``np.stack`` along
  ``slice_axis``).
* Image intensities are normalised per case by
  :func:`cps4.datasets.intensity.normalize_intensity`.
"""
from __future__ import annotations

from pathlib import Path
from typing import List, Optional, Sequence, Tuple

import numpy as np

from cps4.utils.fileio import DatasetFormatError, PathLike

from ..meta import class_to_source_values, read_meta, reassemble_volume
from .io import read_png


def slice_name(case_id: str, index: int) -> str:
    """File name of slice ``index`` of ``case_id`` (``<case>_<iiii>.png``).

    Args:
        case_id (str): Case identifier.
        index (int): Slice index along the slice axis.

    Returns:
        str: The PNG file name.
    """
    return f'{case_id}_{index:04d}.png'


def iter_slices(volume: np.ndarray, slice_axis: int):
    """Yield ``(index, slice)`` along ``slice_axis``.

    Args:
        volume (np.ndarray): 3D array.
        slice_axis (int): Axis to slice along.

    Yields:
        tuple[int, np.ndarray]: Slice index and the contiguous 2D slice.
    """
    moved = np.moveaxis(volume, slice_axis, 0)
    for i in range(moved.shape[0]):
        yield i, np.ascontiguousarray(moved[i])


def load_case_volume(out_dir: PathLike,
                     case_id: str,
                     what: str = 'label',
                     to_source_values: bool = False,
                     meta: Optional[dict] = None) -> np.ndarray:
    """Load a converted case back as a volume in the original array shape.

    Args:
        out_dir (str | PathLike): Converted dataset folder.
        case_id (str): Case to load.
        what (str): ``'label'`` (class indices) or ``'image'`` (normalised
            uint8 intensities). Defaults to ``'label'``.
        to_source_values (bool): Map class indices back to the source label
            values of ``meta['label_values']`` (labels only). Where several
            source values were merged into one class (e.g. SPIDER's canal
            into background) the class's representative value is returned.
            Defaults to False.
        meta (dict, optional): Already loaded ``meta.json``.

    Returns:
        np.ndarray: Volume of shape ``meta['cases'][case_id]['shape']``;
        uint8 indices/intensities, or the smallest integer dtype holding the
        source values.
    """
    if what not in ('label', 'image'):
        raise ValueError(f"what must be 'label' or 'image', got {what!r}")
    if to_source_values and what != 'label':
        raise ValueError('to_source_values applies to labels only')
    out_dir = Path(out_dir)
    meta = meta if meta is not None else read_meta(out_dir)
    if case_id not in meta['cases']:
        raise KeyError(f'case {case_id!r} not in {out_dir / "meta.json"}')
    case = meta['cases'][case_id]
    if what == 'label' and case.get('label') is None:
        raise ValueError(f'case {case_id!r} is unlabelled; it has no label '
                         'slices')
    folder = out_dir / ('labels' if what == 'label' else 'images')
    n_slices = int(case['n_slices'])
    slices = [
        read_png(folder / slice_name(case_id, i)) for i in range(n_slices)
    ]
    volume = reassemble_volume(slices, n_slices, int(meta['slice_axis']))
    shape = tuple(case['shape'])
    if volume.shape != shape:
        raise DatasetFormatError(
            f'{folder}: slices of {case_id!r} reassemble to shape '
            f'{list(volume.shape)}, meta.json says {list(shape)}')
    if to_source_values:
        volume = class_to_source_values(volume, meta['label_values'],
                                        f'case {case_id!r}',
                                        meta.get('ignore_value'))
    return volume


def volume_geometry(shape: Sequence[int], spacing: Sequence[float],
                    affine: np.ndarray) -> Tuple[List[int], List[float],
                                                 List[List[float]]]:
    """Return JSON-ready ``shape``, ``spacing`` and ``affine`` lists."""
    return ([int(s) for s in shape], [float(s) for s in spacing],
            [[float(x) for x in row] for row in np.asarray(affine)])


__all__: List[str] = [
    'slice_name', 'iter_slices', 'load_case_volume', 'volume_geometry'
]
