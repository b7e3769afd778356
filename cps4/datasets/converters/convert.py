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
from pathlib import Path
from typing import Dict, Mapping, Optional, Sequence, Tuple, Union

import numpy as np
from mmengine.logging import print_log

from cps4.utils.atomic_file import atomic_dir
from cps4.utils.fileio import DatasetFormatError, PathLike, write_json_atomic

from ..intensity import normalize_intensity
from ..orientation import orientation_of, reorientation
from ..splits import (DEFAULT_LABEL_RATIOS, DEFAULT_SPLIT_SEEDS,
                      check_label_ratio, check_n_labelled, write_splits)
from .io import write_png
from .layouts import (BaseLayout, CaseFiles, SourceDataset, build_layout,
                      add_unlabelled_cases, check_case_files,
                      select_cases)
from .slicing import iter_slices, slice_name, volume_geometry

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


def _convert_case(layout: BaseLayout, dataset: SourceDataset,
                  case: CaseFiles, slice_axis: int, tmp: Path,
                  orientation: Optional[Sequence[str]] = None
                  ) -> Tuple[Dict, int]:
    """Convert one case into ``tmp``.

    The case is brought to ``orientation`` first (axis permutations and
    flips only); ``meta.json`` keeps its stored affine as
    ``source_affine``.

    Returns:
        tuple[dict, int]: The case's ``meta.json`` entry and the number of
        labelled voxels the class table mapped to background.
    """
    image_name = dataset.rel(case.image)
    label_name = dataset.rel(case.label)
    image, label, spacing, affine = layout.read_case(dataset, case)
    source_affine = affine
    if orientation is not None:
        to_dataset = reorientation(affine, image.shape, orientation)
        image = to_dataset.apply(image)
        label = None if label is None else to_dataset.apply(label)
        spacing = to_dataset.spacing(spacing)
        affine = to_dataset.affine(affine)
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
    if orientation is not None:
        entry['source_affine'] = volume_geometry(image.shape, spacing,
                                                 source_affine)[2]
        entry['source_orientation'] = ''.join(orientation_of(source_affine))
    if label is not None:
        # splits never draw a case without foreground as labelled
        entry['foreground_voxels'] = int(np.count_nonzero(
            (label > 0) & (label != 255)))  # 255: ignored pixels
    if case.subset is not None:
        entry['subset'] = case.subset
    return entry, n_dropped


def _convert_cases(layout: BaseLayout, dataset: SourceDataset,
                   slice_axis: int, tmp: Path,
                   orientation: Optional[Sequence[str]] = None
                   ) -> Dict[str, Dict]:
    """Convert every case into ``tmp``; return the ``meta.json`` cases."""
    (tmp / 'images').mkdir()
    (tmp / 'labels').mkdir()
    case_meta, total_dropped = {}, 0
    n_cases = len(dataset.cases)
    for k, case in enumerate(dataset.cases, 1):
        entry, n_dropped = _convert_case(layout, dataset, case, slice_axis,
                                         tmp, orientation)
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
    return case_meta


def convert_dataset(src_root: PathLike,
                    out_dir: PathLike,
                    layout: Union[str, BaseLayout],
                    classes: Union[None, str, Sequence[str]] = None,
                    slice_axis: Optional[int] = None,
                    label_map: Union[None, PathLike, Mapping] = None,
                    overwrite: bool = False,
                    *,
                    sequence: Optional[str] = None,
                    cases: Optional[Sequence[str]] = None,
                    allow_unlabelled: bool = False,
                    name: Optional[str] = None,
                    orientation: Optional[str] = None,
                    ignore_label: Optional[int] = None,
                    unlabelled: Optional[PathLike] = None,
                    splits: bool = True,
                    split_seeds: Sequence[int] = DEFAULT_SPLIT_SEEDS,
                    split_ratios: Sequence[float] = DEFAULT_LABEL_RATIOS,
                    split_cases: Sequence[int] = (),
                    val_fraction: float = 0.1,
                    test_fraction: float = 0.2) -> Path:
    """Convert a raw dataset into 2D PNG slices, ``meta.json`` and splits.

    Args:
        src_root (str | PathLike): Root of the raw dataset.
        out_dir (str | PathLike): Output folder (created; must not exist
            unless ``overwrite``).
        layout (str | BaseLayout): One of :data:`.LAYOUTS` (``'nnunet'``,
            ``'mrspineseg'``, ``'spider'``, ``'png2d'``) or a layout object.
        classes (str | Sequence[str], optional): Class names, background
            first (list or comma-separated string); what they name depends
            on the layout (see its class).
        slice_axis (int, optional): Slice axis when ``dataset.json`` has no
            ``slice_axis``, an axis of the dataset's orientation. Defaults
            to the axis of largest spacing (ties: fewest voxels).
        label_map (str | PathLike | Mapping, optional): ``spider`` only, see
            :class:`.SpiderLayout`.
        overwrite (bool): Replace an existing converted ``out_dir``.
            Defaults to False.
        sequence (str, optional): ``spider`` only, see :class:`.SpiderLayout`.
        cases (Sequence[str], optional): Convert only these case ids.
        allow_unlabelled (bool): Convert cases without a mask as unlabelled
            (``label`` null, no label slices) instead of raising; they join
            the unlabelled pool of every split and never val or test.
        name (str, optional): Dataset name for ``meta.json``; defaults to
            ``dataset.json`` ``name`` or the source folder name.
        orientation (str, optional): Axis codes (e.g. ``'RAS'``) every 3D
            case is brought to when ``dataset.json`` has no
            ``orientation``. Defaults to the orientation most cases are
            stored in.
        unlabelled (str | PathLike, optional): A folder of further images
            without masks (``<case>_0000<ext>`` or ``<case><ext>``); they
            join the unlabelled pool of every split and never val or test.
        ignore_label (int, optional): Source value of unannotated voxels
            of partially labelled masks (also a ``dataset.json`` label
            named ``ignore``, the nnU-Net v2 convention); stored as 255,
            which every loss and the metric leave out.
        splits (bool): Also write case-level splits. Defaults to True.
        split_seeds (Sequence[int]): Seeds of the splits.
        split_ratios (Sequence[float]): Label ratios of the splits.
        split_cases (Sequence[int]): Numbers of labelled cases of further
            splits (``seed{seed}_{n}cases.json``). Defaults to none.
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
    layout = build_layout(
        layout, classes=classes, label_map=label_map, sequence=sequence)
    for ratio in split_ratios if splits else ():
        check_label_ratio(ratio)
    for n in split_cases if splits else ():
        check_n_labelled(n)
    src_root, out_dir = Path(src_root).absolute(), Path(out_dir).absolute()
    _check_out_dir(src_root, out_dir, overwrite)
    dataset = layout.find_cases(src_root)
    if ignore_label is not None:
        given = dataset.classes.ignore_value
        if given is not None and given != ignore_label:
            raise DatasetFormatError(
                f'--ignore-label {ignore_label} differs from the ignore '
                f'label {given} of the dataset; give one of them')
        dataset.classes = dataset.classes.with_ignore_value(
            ignore_label, 'ignore_label')
    select_cases(dataset, cases)
    check_case_files(dataset, allow_unlabelled)
    add_unlabelled_cases(dataset, unlabelled)
    orientation = layout.resolve_orientation(dataset, orientation)
    axis = layout.resolve_slice_axis(dataset, slice_axis, orientation)
    codes = ('' if orientation is None else
             f', orientation {"".join(orientation)}')
    _log(f'converting {len(dataset.cases)} cases of {src_root} '
         f'({layout.name} layout, {dataset.classes.num_classes} classes, '
         f'slice axis {axis}{codes}) into {out_dir}')
    with atomic_dir(out_dir) as tmp:
        case_meta = _convert_cases(layout, dataset, axis, tmp, orientation)
        write_json_atomic(
            tmp / 'meta.json',
            dict(format_version=FORMAT_VERSION, name=name or dataset.name,
                 layout=layout.name, source_root=str(src_root),
                 **dataset.classes.to_meta(), slice_axis=axis,
                 orientation=None if orientation is None else
                 ''.join(orientation),
                 **dataset.extra_meta, cases=case_meta))
        if splits and any(e['label'] for e in case_meta.values()):
            paths = write_splits(tmp, split_seeds, split_ratios, val_fraction,
                                 test_fraction, labelled_cases=split_cases)
            _log(f'wrote {len(paths)} splits')
        _check_out_dir(src_root, out_dir, overwrite)
    _log(f'done: {out_dir}')
    return out_dir
