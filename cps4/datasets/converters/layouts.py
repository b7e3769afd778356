"""Find the cases of a raw dataset in each supported layout.

Each ``find_*`` function scans a dataset root, pairs image and mask files by
case and builds the class table, returning a :class:`SourceDataset`. Missing
files are not reported here but by :func:`check_case_files`, after an
optional selection of cases, so that converting a few cases of a dataset with
an unrelated broken case still works.

Layouts:

* ``nnunet`` (nnU-Net raw / Medical Segmentation Decathlon):
  ``ROOT/imagesTr/<case>_0000<ending>`` (MSD: ``<case><ending>``),
  ``ROOT/labelsTr/<case><ending>``, ``ROOT/dataset.json`` with ``labels`` as
  ``{name: value}`` (nnU-Net v2) or ``{"value": name}`` (MSD / v1), optional
  ``file_ending`` (default ``.nii.gz``), ``slice_axis``, ``palette`` and
  ``name``. Channels other than ``_0000`` are ignored.
* ``mrspineseg``: ``ROOT/MR/CaseN.nii.gz`` and ``ROOT/Mask/mask_caseN.nii.gz``
  matched case-insensitively; classes :data:`MRSPINESEG_CLASSES`.
* ``spider``: ``ROOT/images/<id>_<sequence>.mha`` and
  ``ROOT/masks/<id>_<sequence>.mha`` with ``sequence`` one of ``t1``, ``t2``,
  ``t2_SPACE``. SPIDER numbers vertebrae 1..25 from the most caudal vertebra
  upward, 100 is the spinal canal and 201..225 are the discs (201 below
  vertebra 1). **Assumption**: vertebra 1 is L5, i.e. the spine is normal
  (five lumbar vertebrae, no lumbosacral transitional vertebra), so 1..9 map
  to L5..T9 and 201..209 to L5/S..T9/T10 of the MRSpineSeg class list; higher
  vertebrae and discs and the canal map to background (their voxel counts are
  logged). SPIDER has no sacrum label, so class ``S`` stays empty. Cases with
  transitional anatomy are mislabelled by one level under this assumption;
  pass a label map (``{source_value: class_name}``, merged over the default)
  to change it.
* ``png2d``: ``ROOT/img_dir/<subset>/*.png`` + ``ROOT/ann_dir/<subset>/*.png``
  (mmseg style) or ``ROOT/images/*.png`` + ``ROOT/labels/*.png``; each image
  is a case of one slice. Class names come from ``classes`` (values
  ``0..K-1``) or from ``ROOT/dataset.json`` ``labels``.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence, Union

from mmengine.logging import print_log

from cps4.utils.fileio import DatasetFormatError, PathLike, read_json

from .classes import (MRSPINESEG_CLASSES, SPIDER_DEFAULT_LABEL_MAP,
                      ClassTable, default_palette, parse_dataset_json_labels,
                      parse_palette)
from ..volume_io import (IMAGE_2D_SUFFIXES, ITK_SUFFIXES, NIFTI_SUFFIXES,
                         strip_suffix)

SPIDER_SEQUENCES = ('t1', 't2', 't2_SPACE')


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
        slice_axis (int | None): Slice axis fixed by the dataset itself.
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


def _check_root(root: PathLike) -> Path:
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(
            f'dataset root {root} does not exist or is not a folder')
    return root


def _subdir(root: Path, name: str, required: bool = True) -> Optional[Path]:
    """Find ``root/name``, matching the folder name case-insensitively."""
    exact = root / name
    if exact.is_dir():
        return exact
    for child in sorted(root.iterdir()):
        if child.is_dir() and child.name.lower() == name.lower():
            return child
    if required:
        raise FileNotFoundError(
            f'{root}: folder {name}/ not found; check the dataset root and '
            'the layout')
    return None


def _files(folder: Optional[Path], suffixes) -> List[Path]:
    """Visible files in ``folder`` whose name ends with one of suffixes."""
    if folder is None:
        return []
    suffixes = tuple(s.lower() for s in suffixes)
    return sorted(
        p for p in folder.iterdir() if p.is_file()
        and not p.name.startswith('.') and p.name.lower().endswith(suffixes))


def _parse_classes(classes: Union[None, str, Sequence[str]]
                   ) -> Optional[List[str]]:
    if classes is None:
        return None
    if isinstance(classes, str):
        classes = classes.split(',')
    names = [str(c).strip() for c in classes]
    if not names or any(not n for n in names):
        raise ValueError(f'classes {list(classes)!r} contains empty names; '
                         'give comma-separated names, background first')
    return names


def _slice_axis_from_json(meta: Mapping, display: str) -> Optional[int]:
    if 'slice_axis' not in meta or meta['slice_axis'] is None:
        return None
    axis = meta['slice_axis']
    if isinstance(axis, bool) or not isinstance(axis, int) or not (
            -3 <= axis <= 2):
        raise DatasetFormatError(
            f"{display}: 'slice_axis' must be 0, 1 or 2, got {axis!r}")
    return axis % 3


def _table_from_dataset_json(meta: Mapping, display: str,
                             classes: Optional[List[str]]) -> ClassTable:
    if 'labels' not in meta:
        raise DatasetFormatError(
            f"{display}: no 'labels' key; add {{\"background\": 0, ...}} "
            'mapping class names to label values')
    names, values = parse_dataset_json_labels(meta['labels'], display)
    palette = (
        parse_palette(meta['palette'], names, display)
        if meta.get('palette') is not None else default_palette(len(names)))
    table = ClassTable.from_values(names, values, palette)
    if classes is not None:
        table = table.rename(classes, f"{display} 'labels'")
    return table


def find_nnunet_cases(root: PathLike,
                      classes: Union[None, str, Sequence[str]] = None
                      ) -> SourceDataset:
    """Find the training cases of an nnU-Net v1/v2 or MSD raw dataset.

    Args:
        root (str | PathLike): Folder holding ``imagesTr``, ``labelsTr`` and
            ``dataset.json``.
        classes (str | Sequence[str], optional): New names for the classes
            of ``dataset.json`` (same count and order).

    Returns:
        SourceDataset: The cases (union of images and masks found).
    """
    root = _check_root(root)
    meta = read_json(root / 'dataset.json', 'dataset.json')
    if not isinstance(meta, Mapping):
        raise DatasetFormatError('dataset.json: expected a JSON object')
    table = _table_from_dataset_json(meta, 'dataset.json',
                                     _parse_classes(classes))
    ending = str(meta.get('file_ending', '.nii.gz'))
    images_dir = _subdir(root, 'imagesTr')
    labels_dir = _subdir(root, 'labelsTr', required=False)

    labels = {
        p.name[:-len(ending)]: p
        for p in _files(labels_dir, (ending, ))
    }
    images: Dict[str, Path] = {}
    ignored_channels = 0
    for path in _files(images_dir, (ending, )):
        stem = path.name[:-len(ending)]
        base, sep, channel = stem.rpartition('_')
        if stem not in labels and sep and len(channel) == 4 and (
                channel.isdigit()):
            if channel == '0000':
                images[base] = path
            else:
                ignored_channels += 1
        else:  # MSD: no channel suffix
            images.setdefault(stem, path)
    if ignored_channels:
        print_log(
            f'nnunet: ignoring {ignored_channels} image files of channels '
            'other than _0000 (only the first channel is converted)',
            logger='current')
    cases = []
    for case_id in sorted(set(images) | set(labels)):
        image = images.get(case_id, images_dir / f'{case_id}_0000{ending}')
        label = labels.get(case_id,
                           (labels_dir or root / 'labelsTr') /
                           f'{case_id}{ending}')
        cases.append(CaseFiles(case_id, image, label))
    return SourceDataset(
        name=str(meta.get('name') or root.name),
        layout='nnunet',
        root=root,
        classes=table,
        cases=cases,
        slice_axis=_slice_axis_from_json(meta, 'dataset.json'),
        label_hint="dataset.json 'labels' "
        f'({dict(zip(table.names, table.label_values))}); fix the mask or '
        'add them to dataset.json')


def find_mrspineseg_cases(root: PathLike,
                          classes: Union[None, str, Sequence[str]] = None
                          ) -> SourceDataset:
    """Find the cases of a raw MRSpineSeg dataset.

    Images ``MR/CaseN.nii.gz`` are paired with masks
    ``Mask/mask_caseN.nii.gz`` ignoring letter case.

    Args:
        root (str | PathLike): Folder holding ``MR`` and ``Mask``.
        classes (str | Sequence[str], optional): New names for the 20
            MRSpineSeg classes.

    Returns:
        SourceDataset: The cases, ids taken from the image names.
    """
    root = _check_root(root)
    mr_dir = _subdir(root, 'MR')
    mask_dir = _subdir(root, 'Mask', required=False)
    table = ClassTable.from_values(MRSPINESEG_CLASSES,
                                   range(len(MRSPINESEG_CLASSES)))
    names = _parse_classes(classes)
    if names is not None:
        table = table.rename(names, 'MRSpineSeg')
    images = {
        strip_suffix(p.name, NIFTI_SUFFIXES).lower():
        (strip_suffix(p.name, NIFTI_SUFFIXES), p)
        for p in _files(mr_dir, NIFTI_SUFFIXES)
    }
    masks = {}
    for p in _files(mask_dir, NIFTI_SUFFIXES):
        key = strip_suffix(p.name, NIFTI_SUFFIXES).lower()
        if key.startswith('mask_'):
            key = key[len('mask_'):]
        masks[key] = p
    cases = []
    for key in sorted(set(images) | set(masks)):
        case_id, image = images.get(
            key, (key, mr_dir / f'{key}.nii.gz (any letter case)'))
        label = masks.get(
            key, (mask_dir or root / 'Mask') / f'mask_{key}.nii.gz')
        cases.append(CaseFiles(case_id, image, label))
    cases.sort(key=lambda c: c.case_id)
    return SourceDataset(
        name=root.name,
        layout='mrspineseg',
        root=root,
        classes=table,
        cases=cases,
        label_hint=f'the MRSpineSeg label values 0..'
        f'{len(MRSPINESEG_CLASSES) - 1}; fix the mask')


def load_label_map(label_map: Union[None, PathLike, Mapping]
                   ) -> Optional[Dict[int, str]]:
    """Load a ``{source_value: class_name}`` label map.

    Args:
        label_map (str | PathLike | Mapping | None): A mapping or a JSON file
            holding one; keys are integers or integer strings.

    Returns:
        dict[int, str] | None: The map, or None when none was given.
    """
    if label_map is None:
        return None
    display = 'label map'
    if not isinstance(label_map, Mapping):
        display = str(label_map)
        label_map = read_json(label_map, display)
        if not isinstance(label_map, Mapping):
            raise DatasetFormatError(
                f'{display}: expected a JSON object {{source_value: '
                'class_name}')
    out = {}
    for key, name in label_map.items():
        try:
            value = int(str(key).strip())
        except ValueError:
            raise DatasetFormatError(
                f'{display}: key {key!r} is not an integer source label '
                'value') from None
        if not isinstance(name, str) or not name:
            raise DatasetFormatError(
                f'{display}: value for {key!r} must be a class name, got '
                f'{name!r}')
        out[value] = name
    return out


def spider_class_table(classes: Union[None, str, Sequence[str]] = None,
                       label_map: Union[None, PathLike, Mapping] = None
                       ) -> ClassTable:
    """Build the class table for SPIDER masks.

    The user ``label_map`` is merged over :data:`SPIDER_DEFAULT_LABEL_MAP`.
    Default entries whose class is not in ``classes`` map to background.
    User entries naming a class not in the list are appended as new classes
    when ``classes`` is None, and refused otherwise.

    Args:
        classes (str | Sequence[str], optional): Output classes, background
            first. Defaults to :data:`MRSPINESEG_CLASSES`.
        label_map (str | PathLike | Mapping, optional): ``{source_value:
            class_name}`` overrides.

    Returns:
        ClassTable: Table whose ``label_values`` hold, per class, the
        smallest source value mapped to it (None for none).
    """
    names = _parse_classes(classes)
    explicit = names is not None
    names = list(names if explicit else MRSPINESEG_CLASSES)
    user = load_label_map(label_map) or {}
    for value, name in sorted(user.items()):
        if name not in names:
            if explicit:
                raise DatasetFormatError(
                    f'label map: value {value} maps to {name!r}, which is '
                    f'not in classes {names}; add it to the classes')
            print_log(f'spider: label map adds class {name!r}',
                      logger='current')
            names.append(name)
    merged = dict(SPIDER_DEFAULT_LABEL_MAP)
    merged.update(user)
    index = {name: i for i, name in enumerate(names)}
    source_to_class = {v: index.get(n, 0) for v, n in merged.items()}
    label_values: List[Optional[int]] = [None] * len(names)
    label_values[0] = 0
    for value in sorted(source_to_class):
        i = source_to_class[value]
        if label_values[i] is None:
            label_values[i] = value
    return ClassTable(
        names=names,
        label_values=label_values,
        palette=default_palette(len(names)),
        source_to_class=source_to_class)


def find_spider_cases(root: PathLike,
                      sequence: str = 't2',
                      classes: Union[None, str, Sequence[str]] = None,
                      label_map: Union[None, PathLike, Mapping] = None
                      ) -> SourceDataset:
    """Find the cases of a SPIDER dataset for one MR sequence.

    Args:
        root (str | PathLike): Folder holding ``images`` and ``masks``.
        sequence (str): ``'t1'``, ``'t2'`` or ``'t2_SPACE'``. Defaults to
            ``'t2'``.
        classes (str | Sequence[str], optional): See
            :func:`spider_class_table`.
        label_map (str | PathLike | Mapping, optional): See
            :func:`spider_class_table`.

    Returns:
        SourceDataset: The cases, ids being the SPIDER study ids.
    """
    root = _check_root(root)
    known = {s.lower(): s for s in SPIDER_SEQUENCES}
    if sequence.lower() not in known:
        raise ValueError(f'unknown SPIDER sequence {sequence!r}; choose one '
                         f'of {list(SPIDER_SEQUENCES)}')
    suffix = '_' + sequence.lower()
    images_dir = _subdir(root, 'images')
    masks_dir = _subdir(root, 'masks', required=False)

    def by_id(folder):
        found = {}
        for p in _files(folder, ITK_SUFFIXES + NIFTI_SUFFIXES):
            stem = strip_suffix(p.name)
            if stem.lower().endswith(suffix):
                found[stem[:-len(suffix)]] = p
        return found

    images, masks = by_id(images_dir), by_id(masks_dir)
    seq = known[sequence.lower()]
    cases = [
        CaseFiles(
            case_id,
            images.get(case_id, images_dir / f'{case_id}_{seq}.mha'),
            masks.get(case_id,
                      (masks_dir or root / 'masks') / f'{case_id}_{seq}.mha'))
        for case_id in sorted(set(images) | set(masks))
    ]
    table = spider_class_table(classes, label_map)
    inverse = {}
    for value, i in sorted(table.source_to_class.items()):
        inverse[str(value)] = table.names[i]
    return SourceDataset(
        name=f'{root.name}_{seq}',
        layout='spider',
        root=root,
        classes=table,
        cases=cases,
        label_hint='the SPIDER label map (0..25, 100, 201..225 by default); '
        'fix the mask or map them with a label map',
        extra_meta=dict(sequence=seq, label_map=inverse))


def find_png2d_cases(root: PathLike,
                     classes: Union[None, str, Sequence[str]] = None
                     ) -> SourceDataset:
    """Find the cases of a 2D dataset (one image = one case of one slice).

    Args:
        root (str | PathLike): Folder holding ``img_dir``/``ann_dir`` (mmseg
            style, with or without subset folders) or ``images``/``labels``.
        classes (str | Sequence[str], optional): Class names, background
            first, for label values ``0..K-1``; with a ``dataset.json`` in
            ``root`` they rename its classes instead.

    Returns:
        SourceDataset: The cases, ids taken from the image names.
    """
    root = _check_root(root)
    names = _parse_classes(classes)
    json_path = root / 'dataset.json'
    meta: Mapping = {}
    if json_path.is_file():
        meta = read_json(json_path, 'dataset.json')
        table = _table_from_dataset_json(meta, 'dataset.json', names)
        hint = ("dataset.json 'labels' "
                f'({dict(zip(table.names, table.label_values))}); fix the '
                'label image or add them to dataset.json')
    elif names is not None:
        table = ClassTable.from_values(names, range(len(names)))
        hint = (f'the classes {names} (values 0..{len(names) - 1}); fix the '
                'label image or pass more classes')
    else:
        raise ValueError(
            f'png2d: no class names for {root}; pass classes (e.g. --classes '
            "background,disc,vertebra) or add a dataset.json with 'labels'")

    if _subdir(root, 'img_dir', required=False) is not None:
        img_root = _subdir(root, 'img_dir')
        ann_root = _subdir(root, 'ann_dir', required=False) or (
            root / 'ann_dir')
        subsets = [(None, img_root, ann_root)] + [
            (d.name, d, ann_root / d.name)
            for d in sorted(img_root.iterdir()) if d.is_dir()
        ]
    elif _subdir(root, 'images', required=False) is not None:
        subsets = [(None, _subdir(root, 'images'),
                    _subdir(root, 'labels', required=False)
                    or root / 'labels')]
    else:
        raise FileNotFoundError(
            f'{root}: neither img_dir/ + ann_dir/ nor images/ + labels/ '
            'found; check the dataset root')

    cases: Dict[str, CaseFiles] = {}
    for subset, img_dir, ann_dir in subsets:
        images = {
            strip_suffix(p.name): p
            for p in _files(img_dir, IMAGE_2D_SUFFIXES)
        }
        labels = {
            strip_suffix(p.name): p
            for p in _files(ann_dir if ann_dir.is_dir() else None,
                            IMAGE_2D_SUFFIXES)
        }
        for case_id in sorted(set(images) | set(labels)):
            image = images.get(case_id, img_dir / f'{case_id}.png')
            label = labels.get(case_id, ann_dir / f'{case_id}.png')
            if case_id in cases:
                raise DatasetFormatError(
                    f'{image.relative_to(root).as_posix()}: case id '
                    f'{case_id!r} also used by '
                    f'{cases[case_id].image.relative_to(root).as_posix()}; '
                    'image names must be unique across subsets')
            cases[case_id] = CaseFiles(case_id, image, label, subset)
    return SourceDataset(
        name=str(meta.get('name') or root.name),
        layout='png2d',
        root=root,
        classes=table,
        cases=[cases[k] for k in sorted(cases)],
        is_2d=True,
        slice_axis=2,
        label_hint=hint)


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


#: Layout key -> case finder.
LAYOUT_FINDERS = {
    'nnunet': find_nnunet_cases,
    'mrspineseg': find_mrspineseg_cases,
    'spider': find_spider_cases,
    'png2d': find_png2d_cases,
}
