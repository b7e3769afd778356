"""Convert a raw spine MR dataset into 2D PNG slices with case meta data.

Output folder ``OUT``::

    OUT/
      images/<case_id>_<slice:04d>.png   uint8 grayscale, per-case normalised
      labels/<case_id>_<slice:04d>.png   uint8 class indices 0..K-1
      meta.json                          classes, palette, geometry per case
      splits/seed{seed}_{pct}pct.json    case-level splits (optional)

Every slice index ``0..n_slices-1`` along ``slice_axis`` is stored, empty
slices included. The conversion is written into a temporary sibling folder
that replaces ``OUT`` only once everything succeeded, so a failed or
interrupted run never damages an existing complete ``OUT``.
"""
from __future__ import annotations

import logging
import numbers
import os
import shutil
import tempfile
from pathlib import Path
from typing import Dict, List, Mapping, Optional, Sequence, Tuple, Union

import numpy as np
from mmengine.logging import print_log

from cps4.utils.fileio import DatasetFormatError, PathLike, write_json_atomic

from ..splits import (DEFAULT_LABEL_RATIOS, DEFAULT_SPLIT_SEEDS,
                      check_label_ratio, write_splits)
from ..intensity import normalize_intensity
from ..volume_io import (VolumeHeader, choose_slice_axis, read_volume,
                         read_volume_header)
from .io import read_image_2d, write_png
from .layouts import (LAYOUT_FINDERS, SourceDataset, check_case_files,
                      select_cases)
from .slicing import iter_slices, slice_name, volume_geometry

#: Supported layouts.
LAYOUTS = tuple(LAYOUT_FINDERS)
#: Version of the output format written to ``meta.json``.
FORMAT_VERSION = 1


def _log(msg: str, level: int = logging.INFO) -> None:
    print_log(msg, logger='current', level=level)


def _check_out_dir(src_root: Path, out_dir: Path, overwrite: bool) -> None:
    """Refuse output folders that would clobber data."""
    src_real, out_real = src_root.resolve(), out_dir.resolve()
    if out_real == src_real or src_real in out_real.parents or (
            out_real in src_real.parents):
        raise ValueError(
            f'output folder {out_dir} overlaps the source {src_root}; choose '
            'an output folder outside the source dataset')
    if not out_dir.exists():
        return
    if not overwrite:
        raise FileExistsError(
            f'{out_dir} already exists; pass overwrite=True (--overwrite) to '
            'replace it or choose another output folder')
    if not out_dir.is_dir():
        raise FileExistsError(f'{out_dir} exists and is not a folder')
    if any(out_dir.iterdir()) and not (out_dir / 'meta.json').is_file():
        raise FileExistsError(
            f'{out_dir} is not empty and holds no meta.json, so it is not a '
            'converted dataset; refusing to replace it')


def _resolve_slice_axis(dataset: SourceDataset, slice_axis: Optional[int],
                        headers: Mapping[str, VolumeHeader]) -> int:
    """Apply the precedence dataset.json > argument > voxel spacing."""
    if slice_axis is not None:
        if isinstance(slice_axis, bool) or not isinstance(
                slice_axis, numbers.Integral) or not -3 <= slice_axis <= 2:
            raise ValueError(
                f'slice_axis must be 0, 1 or 2, got {slice_axis!r}')
        slice_axis = int(slice_axis) % 3
    if dataset.is_2d:
        return 2
    if dataset.slice_axis is not None:
        if slice_axis is not None and slice_axis != dataset.slice_axis:
            _log(
                f'slice_axis={slice_axis} ignored: the dataset fixes '
                f'slice_axis={dataset.slice_axis} (dataset.json)',
                logging.WARNING)
        return dataset.slice_axis
    if slice_axis is not None:
        return slice_axis
    by_axis: Dict[int, List[str]] = {}
    for case_id, header in headers.items():
        axis = choose_slice_axis(header.spacing, header.shape)
        by_axis.setdefault(axis, []).append(case_id)
    if len(by_axis) > 1:
        detail = '; '.join(f'axis {a} for {ids[:5]}'
                           for a, ids in sorted(by_axis.items()))
        raise DatasetFormatError(
            'cases disagree on the slice axis chosen from their voxel '
            f'spacing ({detail}); pass slice_axis (--slice-axis)')
    axis = next(iter(by_axis))
    _log(f'slice axis {axis} chosen from the voxel spacing')
    return axis


def _read_headers(dataset: SourceDataset) -> Dict[str, VolumeHeader]:
    """Read every image header and compare image and mask shapes.

    This catches unreadable headers, 2D files and shape mismatches before
    any voxel is loaded.
    """
    headers = {}
    for case in dataset.cases:
        image = read_volume_header(case.image, dataset.rel(case.image))
        headers[case.case_id] = image
        if case.label is None:
            continue
        label = read_volume_header(case.label, dataset.rel(case.label))
        if image.shape != label.shape:
            raise DatasetFormatError(
                f'{dataset.rel(case.label)}: mask shape {list(label.shape)} '
                f'differs from image {dataset.rel(case.image)} shape '
                f'{list(image.shape)}; resample the mask onto the image grid')
    return headers


def _convert_case(dataset: SourceDataset, case, slice_axis: int,
                  tmp: Path) -> Tuple[Dict, int]:
    """Convert one case into ``tmp``.

    Returns:
        tuple[dict, int]: The case's ``meta.json`` entry and the number of
        labelled voxels the class table mapped to background.
    """
    image_name = dataset.rel(case.image)
    label_name = dataset.rel(case.label)
    if dataset.is_2d:
        image = read_image_2d(case.image, image_name)[..., None]
        spacing, affine = (1.0, 1.0, 1.0), np.eye(4)
        label = None
        if case.label is not None:
            label = read_image_2d(case.label, label_name, is_label=True)
            label = label[..., None]
    else:
        vol = read_volume(case.image, image_name)
        image, spacing, affine = vol.data, vol.spacing, vol.affine
        label = None
        if case.label is not None:
            label = read_volume(case.label, label_name, is_label=True).data
    if label is not None and label.shape != image.shape:
        raise DatasetFormatError(
            f'{label_name}: mask shape {list(label.shape)} differs from image '
            f'{image_name} shape {list(image.shape)}; resample the mask onto '
            'the image grid')
    image_u8 = normalize_intensity(image, image_name)
    n_dropped = 0
    if label is not None:
        label, n_dropped = dataset.classes.map_labels(label, label_name,
                                                      dataset.label_hint)
    for i, plane in iter_slices(image_u8, slice_axis):
        write_png(tmp / 'images' / slice_name(case.case_id, i), plane)
    if label is not None:
        for i, plane in iter_slices(label, slice_axis):
            write_png(tmp / 'labels' / slice_name(case.case_id, i), plane)
    shape, spacing, affine = volume_geometry(image.shape, spacing, affine)
    entry = dict(
        n_slices=int(image.shape[slice_axis]),
        shape=shape,
        spacing=spacing,
        affine=affine,
        image=image_name,
        label=label_name)
    if case.subset is not None:
        entry['subset'] = case.subset
    return entry, n_dropped


def _commit(tmp: Path, out_dir: Path) -> None:
    """Move the finished ``tmp`` folder to ``out_dir``."""
    os.chmod(tmp, 0o755)
    if out_dir.exists():
        old = Path(
            tempfile.mkdtemp(prefix=f'.{out_dir.name}.old-',
                             dir=out_dir.parent))
        os.replace(out_dir, old / out_dir.name)
        try:
            os.replace(tmp, out_dir)
        except BaseException:
            os.replace(old / out_dir.name, out_dir)  # put the old one back
            raise
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(tmp, out_dir)


def convert_dataset(src_root: PathLike,
                    out_dir: PathLike,
                    layout: str,
                    classes: Union[None, str, Sequence[str]] = None,
                    slice_axis: Optional[int] = None,
                    label_map: Union[None, PathLike, Mapping] = None,
                    overwrite: bool = False,
                    *,
                    sequence: str = 't2',
                    cases: Optional[Sequence[str]] = None,
                    allow_unlabelled: bool = False,
                    name: Optional[str] = None,
                    splits: bool = True,
                    split_seeds: Sequence[int] = DEFAULT_SPLIT_SEEDS,
                    split_ratios: Sequence[float] = DEFAULT_LABEL_RATIOS,
                    val_fraction: float = 0.1,
                    test_fraction: float = 0.2) -> Path:
    """Convert a raw dataset into 2D PNG slices, ``meta.json`` and splits.

    Args:
        src_root (str | PathLike): Root of the raw dataset.
        out_dir (str | PathLike): Output folder (created; must not exist
            unless ``overwrite``).
        layout (str): One of ``'nnunet'``, ``'mrspineseg'``, ``'spider'``,
            ``'png2d'``.
        classes (str | Sequence[str], optional): Class names, background
            first (list or comma-separated string). For ``nnunet``,
            ``mrspineseg`` and ``png2d`` with a ``dataset.json`` they rename
            the layout's classes (same count); for ``png2d`` without one they
            define the classes of label values ``0..K-1``; for ``spider``
            they are the output classes the label map refers to.
        slice_axis (int, optional): Slice axis when ``dataset.json`` has no
            ``slice_axis``. Defaults to the axis of largest spacing (ties:
            fewest voxels).
        label_map (str | PathLike | Mapping, optional): ``spider`` only:
            ``{source_value: class_name}`` merged over the default SPIDER
            map, or a JSON file holding it.
        overwrite (bool): Replace an existing converted ``out_dir``.
            Defaults to False.
        sequence (str): ``spider`` only: ``'t1'``, ``'t2'`` or
            ``'t2_SPACE'``. Defaults to ``'t2'``.
        cases (Sequence[str], optional): Convert only these case ids.
        allow_unlabelled (bool): Convert cases without a mask as unlabelled
            (``label`` null, no label slices) instead of raising.
        name (str, optional): Dataset name for ``meta.json``; defaults to
            ``dataset.json`` ``name`` or the source folder name.
        splits (bool): Also write case-level splits. Defaults to True.
        split_seeds (Sequence[int]): Seeds of the splits. Defaults to
            (0, 1, 2).
        split_ratios (Sequence[float]): Label ratios of the splits. Defaults
            to (0.01, 0.05, 0.1, 0.25, 1.0).
        val_fraction (float): Fraction of cases for validation.
        test_fraction (float): Fraction of cases for testing.

    Returns:
        Path: ``out_dir``.

    Raises:
        ValueError: Unknown layout or bad argument.
        FileExistsError: ``out_dir`` exists and ``overwrite`` is False.
        FileNotFoundError: A source file or folder is missing.
        DatasetFormatError: A source file is unreadable or inconsistent.
    """
    if layout not in LAYOUT_FINDERS:
        raise ValueError(f'unknown layout {layout!r}; known layouts: '
                         f'{", ".join(LAYOUTS)}')
    if label_map is not None and layout != 'spider':
        raise ValueError(f'label_map is only supported for the spider layout, '
                         f'not {layout!r}')
    if splits:
        for ratio in split_ratios:
            check_label_ratio(ratio)
    src_root = Path(src_root).absolute()
    out_dir = Path(out_dir).absolute()
    _check_out_dir(src_root, out_dir, overwrite)

    kwargs = dict(classes=classes)
    if layout == 'spider':
        kwargs.update(sequence=sequence, label_map=label_map)
    dataset = LAYOUT_FINDERS[layout](src_root, **kwargs)
    select_cases(dataset, cases)
    check_case_files(dataset, allow_unlabelled)
    headers = {} if dataset.is_2d else _read_headers(dataset)
    axis = _resolve_slice_axis(dataset, slice_axis, headers)
    n_cases = len(dataset.cases)
    _log(f'converting {n_cases} cases of {src_root} ({layout} layout, '
         f'{dataset.classes.num_classes} classes, slice axis {axis}) '
         f'into {out_dir}')

    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f'.{out_dir.name}.tmp-',
                                dir=out_dir.parent))
    try:
        (tmp / 'images').mkdir()
        (tmp / 'labels').mkdir()
        case_meta, total_dropped = {}, 0
        for k, case in enumerate(dataset.cases, 1):
            entry, n_dropped = _convert_case(dataset, case, axis, tmp)
            case_meta[case.case_id] = entry
            total_dropped += n_dropped
            n = entry['n_slices']
            note = '' if case.label else ' (unlabelled)'
            if n_dropped:
                note += f', {n_dropped} labelled voxels mapped to background'
            _log(f'[{k}/{n_cases}] {case.case_id}: {n} '
                 f'slice{"" if n == 1 else "s"}{note}')
        if total_dropped:
            _log(
                f'{total_dropped} labelled voxels in total were mapped to '
                'background by the label map', logging.WARNING)
        meta = dict(
            format_version=FORMAT_VERSION,
            name=name or dataset.name,
            layout=layout,
            source_root=str(src_root),
            **dataset.classes.to_meta(),
            slice_axis=axis,
            **dataset.extra_meta,
            cases=case_meta)
        write_json_atomic(tmp / 'meta.json', meta)
        if splits and any(e['label'] for e in case_meta.values()):
            paths = write_splits(tmp, split_seeds, split_ratios, val_fraction,
                                 test_fraction)
            _log(f'wrote {len(paths)} splits')
        _check_out_dir(src_root, out_dir, overwrite)
        _commit(tmp, out_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    _log(f'done: {out_dir}')
    return out_dir
