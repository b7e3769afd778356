"""The base of the raw dataset layouts and the cases they find.

A layout (one registered class per file in this package) knows how a raw
dataset is stored: :meth:`BaseLayout.find_cases` scans a dataset root, pairs
image and mask files by case and builds the class table, returning a
:class:`SourceDataset`; :meth:`BaseLayout.read_case` loads one case and
:meth:`BaseLayout.resolve_orientation` and
:meth:`BaseLayout.resolve_slice_axis` pick the axis order every case is
brought to and the axis it is cut along. Missing
files are not reported while scanning but by :func:`check_case_files`, after
an optional selection of cases (:func:`select_cases`), so that converting a
few cases of a dataset with an unrelated broken case still works.
"""
from __future__ import annotations

import logging
import numbers
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
from mmengine.logging import print_log
from mmengine.registry import Registry

from cps4.utils.fileio import DatasetFormatError, PathLike

from ...orientation import (Axcodes, check_axcodes, match_grid,
                            orientation_of, reorientation)
from ...volume_io import (IMAGE_2D_SUFFIXES, ITK_SUFFIXES, NIFTI_SUFFIXES,
                          VolumeHeader, choose_slice_axis, read_volume,
                          read_volume_header, strip_suffix)
from ..classes import ClassTable

#: Registry of the raw dataset layouts, keyed by layout name.
DATASET_LAYOUTS = Registry('dataset layout', scope='cps4')

ClassNames = Union[None, str, Sequence[str]]


@dataclass
class CaseFiles:
    """Source files of one case.

    Attributes:
        case_id (str): Case identifier used in output file names.
        image (Path): Image file (may not exist; see
            :func:`check_case_files`).
        label (Path | None): Mask file, ``None`` for an unlabelled case.
        subset (str | None): Source subset (mmseg ``img_dir/<subset>``).
    """

    case_id: str
    image: Path
    label: Optional[Path]
    subset: Optional[str] = None


@dataclass
class SourceDataset:
    """A raw dataset found on disk, ready to convert.

    Attributes:
        name (str): Dataset name.
        layout (str): Layout key, e.g. ``'nnunet'``.
        root (Path): Dataset root.
        classes (ClassTable): Class table.
        cases (list[CaseFiles]): Cases sorted by id.
        is_2d (bool): Whether files are 2D images (one slice per case).
        slice_axis (int | None): Slice axis fixed by the dataset itself
            (an axis of the dataset's orientation).
        orientation (str | None): Axis codes every case is brought to,
            fixed by the dataset itself (``dataset.json`` ``orientation``).
        label_hint (str): End of the message for unknown label values.
        extra_meta (dict): Additional ``meta.json`` entries.
    """

    name: str
    layout: str
    root: Path
    classes: ClassTable
    cases: List[CaseFiles]
    is_2d: bool = False
    slice_axis: Optional[int] = None
    orientation: Optional[str] = None
    label_hint: str = 'the class table'
    extra_meta: Dict[str, Any] = field(default_factory=dict)

    def rel(self, path: Optional[Path]) -> Optional[str]:
        """Return ``path`` relative to the root as a POSIX string."""
        if path is None:
            return None
        try:
            return path.relative_to(self.root).as_posix()
        except ValueError:
            return str(path)


def check_slice_axis(slice_axis: Optional[int]) -> Optional[int]:
    """Check a requested slice axis and return it in ``0..2`` (or None).

    Raises:
        ValueError: ``slice_axis`` is not an integer in ``-3..2``.
    """
    if slice_axis is None:
        return None
    if isinstance(slice_axis, bool) or not isinstance(
            slice_axis, numbers.Integral) or not -3 <= slice_axis <= 2:
        raise ValueError(f'slice_axis must be 0, 1 or 2, got {slice_axis!r}')
    return int(slice_axis) % 3


class BaseLayout:
    """Base class of the raw dataset layouts of 3D volumes.

    Subclasses set :attr:`name`, implement :meth:`find_cases` and, for
    non-volume files, override :meth:`read_case` and
    :meth:`resolve_slice_axis`.

    Args:
        classes (str | Sequence[str], optional): Class names, background
            first (list or comma-separated string); their meaning depends on
            the layout (see its :meth:`find_cases`).
    """

    #: Layout key written to ``meta.json``.
    name: str = ''

    def __init__(self, classes: ClassNames = None):
        self.classes = classes

    def find_cases(self, root: PathLike) -> SourceDataset:
        """Find the cases and the class table of the dataset at ``root``.

        Args:
            root (str | PathLike): Dataset root.

        Returns:
            SourceDataset: The cases found (files may be missing).
        """
        raise NotImplementedError

    def read_headers(self,
                     dataset: SourceDataset) -> Dict[str, VolumeHeader]:
        """Read every image header and check each mask's grid against it.

        This catches unreadable headers, 2D files and masks that do not lie
        on their image's voxel grid before any voxel is loaded. A mask
        stored with its axes permuted or flipped (its affine saying so) is
        accepted: :meth:`read_case` brings it to the image's axis order.

        Args:
            dataset (SourceDataset): The cases to check.

        Returns:
            dict[str, VolumeHeader]: Image header per case id.

        Raises:
            DatasetFormatError: A mask's shape, spacing, origin or direction
                differs from its image's (after any axis permutation).
        """
        headers = {}
        for case in dataset.cases:
            image = read_volume_header(case.image, dataset.rel(case.image))
            headers[case.case_id] = image
            if case.label is None:
                continue
            label = read_volume_header(case.label, dataset.rel(case.label))
            check_mask_grid(label, image, dataset.rel(case.label),
                            dataset.rel(case.image))
        return headers

    def resolve_orientation(self,
                            dataset: SourceDataset,
                            orientation: Optional[str] = None
                            ) -> Optional[Axcodes]:
        """Pick the axis order every case is brought to.

        ``dataset.json`` > argument > the orientation most cases are stored
        in (ties: the first case's), so a dataset whose cases all share one
        orientation is converted without moving a voxel.

        Args:
            dataset (SourceDataset): The cases to convert.
            orientation (str, optional): Requested axis codes, e.g.
                ``'RAS'``.

        Returns:
            tuple[str, str, str] | None: Axis codes; None for 2D layouts.
        """
        requested = (check_axcodes(orientation, 'orientation')
                     if orientation is not None else None)
        if dataset.orientation is not None:
            fixed = check_axcodes(dataset.orientation,
                                  'dataset.json orientation')
            if requested is not None and requested != fixed:
                print_log(
                    f'orientation={"".join(requested)} ignored: the dataset '
                    f'fixes orientation={"".join(fixed)} (dataset.json)',
                    logger='current',
                    level=logging.WARNING)
            return fixed
        if requested is not None:
            return requested
        counts: Dict[Axcodes, List[str]] = {}
        for case_id, header in self.read_headers(dataset).items():
            counts.setdefault(orientation_of(header.affine),
                              []).append(case_id)
        target = max(counts, key=lambda codes: len(counts[codes]))
        others = {c: ids for c, ids in counts.items() if c != target}
        if others:
            detail = '; '.join(f'{"".join(c)}: {ids[:5]}'
                               for c, ids in sorted(others.items()))
            print_log(
                f'{sum(map(len, others.values()))} case(s) stored in another '
                f'axis order are brought to {"".join(target)}, the order of '
                f'{len(counts[target])} case(s) ({detail})',
                logger='current')
        return target

    def resolve_slice_axis(self,
                           dataset: SourceDataset,
                           slice_axis: Optional[int] = None,
                           orientation: Optional[Sequence[str]] = None
                           ) -> int:
        """Pick the slice axis: dataset.json > argument > voxel spacing.

        Args:
            dataset (SourceDataset): The cases to convert.
            slice_axis (int, optional): Requested axis.
            orientation (Sequence[str], optional): Axis codes the cases are
                brought to; the axis is an axis of that order. Defaults to
                each case's stored order.

        Returns:
            int: The slice axis in ``0..2``.
        """
        headers = self.read_headers(dataset)
        slice_axis = check_slice_axis(slice_axis)
        if dataset.slice_axis is not None:
            if slice_axis is not None and slice_axis != dataset.slice_axis:
                print_log(
                    f'slice_axis={slice_axis} ignored: the dataset fixes '
                    f'slice_axis={dataset.slice_axis} (dataset.json)',
                    logger='current',
                    level=logging.WARNING)
            return dataset.slice_axis
        if slice_axis is not None:
            return slice_axis
        by_axis: Dict[int, List[str]] = {}
        for case_id, header in headers.items():
            shape, spacing = header.shape, header.spacing
            if orientation is not None:
                r = reorientation(header.affine, shape, orientation)
                shape, spacing = r.target_shape, r.spacing(spacing)
            axis = choose_slice_axis(spacing, shape)
            by_axis.setdefault(axis, []).append(case_id)
        if len(by_axis) > 1:
            detail = '; '.join(f'axis {a} for {ids[:5]}'
                               for a, ids in sorted(by_axis.items()))
            raise DatasetFormatError(
                'cases disagree on the slice axis chosen from their voxel '
                f'spacing ({detail}); pass slice_axis (--slice-axis)')
        axis = next(iter(by_axis))
        print_log(f'slice axis {axis} chosen from the voxel spacing',
                  logger='current')
        return axis

    def read_case(
        self, dataset: SourceDataset, case: CaseFiles
    ) -> Tuple[np.ndarray, Optional[np.ndarray], Tuple[float, ...],
               np.ndarray]:
        """Load the image and mask of one case.

        Args:
            dataset (SourceDataset): The dataset ``case`` belongs to.
            case (CaseFiles): The case.

        Returns:
            tuple: ``(image, label, spacing, affine)``: the 3D float image,
            the 3D integer mask in the image's axis order (None when
            unlabelled), the voxel spacing and the 4x4 affine of the image
            as stored.

        Raises:
            DatasetFormatError: The mask does not lie on the image's grid.
        """
        vol = read_volume(case.image, dataset.rel(case.image))
        label = None
        if case.label is not None:
            mask = read_volume(
                case.label, dataset.rel(case.label), is_label=True)
            to_image = check_mask_grid(
                VolumeHeader(mask.data.shape, mask.spacing, mask.affine),
                VolumeHeader(vol.data.shape, vol.spacing, vol.affine),
                dataset.rel(case.label), dataset.rel(case.image))
            label = to_image.apply(mask.data)
        return vol.data, label, vol.spacing, vol.affine


def check_mask_grid(mask: VolumeHeader, image: VolumeHeader, mask_name: str,
                    image_name: str):
    """Check that a mask lies on its image's voxel grid, in any axis order.

    Args:
        mask (VolumeHeader): The mask's shape, spacing and affine.
        image (VolumeHeader): The image's.
        mask_name (str): The mask file in messages.
        image_name (str): The image file in messages.

    Returns:
        Reorientation: Brings the mask array to the image's axis order
        (identity when both are stored alike).

    Raises:
        DatasetFormatError: The grids differ.
    """
    to_image = match_grid(mask.affine, mask.shape, image.affine, image.shape)
    if to_image is not None:
        return to_image
    if sorted(mask.shape) != sorted(image.shape):
        what = (f'mask shape {list(mask.shape)} differs from image '
                f'{image_name} shape {list(image.shape)}')
    else:
        what = (f'mask geometry differs from image {image_name}: axis '
                f'order {"".join(orientation_of(mask.affine))} vs '
                f'{"".join(orientation_of(image.affine))}, spacing '
                f'{[round(s, 4) for s in mask.spacing]} vs '
                f'{[round(s, 4) for s in image.spacing]}, origin '
                f'{np.round(mask.affine[:3, 3], 3).tolist()} vs '
                f'{np.round(image.affine[:3, 3], 3).tolist()} mm')
    raise DatasetFormatError(
        f'{mask_name}: {what}; the mask does not lie on the image\'s voxel '
        'grid, so its labels would land on the wrong voxels. Resample the '
        'mask onto the image grid or fix its header')


def select_cases(dataset: SourceDataset,
                 case_ids: Optional[Sequence[str]]) -> SourceDataset:
    """Keep only ``case_ids`` (in dataset order); unknown ids raise.

    Args:
        dataset (SourceDataset): The dataset found on disk.
        case_ids (Sequence[str], optional): Cases to keep; None keeps all.

    Returns:
        SourceDataset: The same object with its case list filtered.
    """
    if case_ids is None:
        return dataset
    wanted = list(dict.fromkeys(case_ids))
    known = {c.case_id for c in dataset.cases}
    unknown = [c for c in wanted if c not in known]
    if unknown:
        preview = sorted(known)[:10]
        raise ValueError(
            f'cases {unknown} not found in {dataset.root} ({dataset.layout} '
            f'layout); known cases include {preview}')
    dataset.cases = [c for c in dataset.cases if c.case_id in set(wanted)]
    return dataset


def add_unlabelled_cases(dataset: SourceDataset,
                         folder: Optional[PathLike]) -> SourceDataset:
    """Add the images of ``folder`` as cases without a mask.

    File names follow the dataset's images: ``<case>_0000<ext>`` (nnU-Net)
    or ``<case><ext>``; other channels (``_0001``...) are skipped.

    Args:
        dataset (SourceDataset): The dataset found on disk.
        folder (str | PathLike, optional): Folder of images without masks;
            None adds nothing.

    Returns:
        SourceDataset: The same object with the new cases, sorted by id.

    Raises:
        FileNotFoundError: ``folder`` does not exist.
        DatasetFormatError: It holds no image, or a case id that the
            dataset already has.
    """
    if folder is None:
        return dataset
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(
            f'unlabelled folder {folder} not found; give a folder of images '
            'without masks')
    suffixes = (IMAGE_2D_SUFFIXES if dataset.is_2d else
                NIFTI_SUFFIXES + ITK_SUFFIXES)
    known = {c.case_id for c in dataset.cases}
    added, skipped = [], 0
    for path in sorted(folder.iterdir()):
        if not path.is_file() or not path.name.lower().endswith(suffixes):
            continue
        stem = strip_suffix(path.name)
        base, sep, channel = stem.rpartition('_')
        if sep and len(channel) == 4 and channel.isdigit():
            if channel != '0000':
                skipped += 1
                continue
            stem = base
        if stem in known:
            raise DatasetFormatError(
                f'{path}: case id {stem!r} is also a case of '
                f'{dataset.root}; rename the unlabelled image')
        known.add(stem)
        added.append(CaseFiles(stem, path, None))
    if not added:
        raise DatasetFormatError(
            f'unlabelled folder {folder} holds no image with a suffix of '
            f'{list(suffixes)}')
    print_log(f'{len(added)} unlabelled case(s) from {folder}'
              + (f' ({skipped} files of other channels skipped)'
                 if skipped else ''), logger='current')
    dataset.cases = sorted(dataset.cases + added, key=lambda c: c.case_id)
    return dataset


def check_case_files(dataset: SourceDataset,
                     allow_unlabelled: bool = False) -> SourceDataset:
    """Check that every case has its image and mask files.

    Args:
        dataset (SourceDataset): The dataset found on disk.
        allow_unlabelled (bool): Keep cases without a mask as unlabelled
            (``label`` None) instead of raising. Defaults to False.

    Returns:
        SourceDataset: The same object, unlabelled cases' ``label`` cleared.

    Raises:
        DatasetFormatError: No case was found.
        FileNotFoundError: An image is missing, or a mask is missing and
            ``allow_unlabelled`` is False. The message lists the files.
    """
    if not dataset.cases:
        raise DatasetFormatError(
            f'{dataset.root}: no cases found for the {dataset.layout!r} '
            'layout; check the dataset root, the layout and the file names')
    no_image = [c for c in dataset.cases if not c.image.is_file()]
    if no_image:
        listed = '; '.join(
            f'{dataset.rel(c.image)} (mask {dataset.rel(c.label)} exists)'
            for c in no_image[:10])
        raise FileNotFoundError(
            f'{len(no_image)} case(s) have a mask but no image: {listed}; '
            'add the images or remove those masks')
    no_label = [
        c for c in dataset.cases if c.label is None or not c.label.is_file()
    ]
    if no_label and not allow_unlabelled:
        listed = '; '.join(
            f'{dataset.rel(c.label)} (image {dataset.rel(c.image)} exists)'
            for c in no_label[:10])
        raise FileNotFoundError(
            f'{len(no_label)} case(s) have an image but no mask: {listed}; '
            'add the masks, remove those images, or allow unlabelled cases')
    for case in no_label:
        case.label = None
    return dataset
