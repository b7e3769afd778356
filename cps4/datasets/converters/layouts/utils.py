"""File scanning and class parsing shared by the raw dataset layouts."""
from __future__ import annotations

from pathlib import Path
from typing import List, Mapping, Optional

from cps4.utils.fileio import DatasetFormatError, PathLike

from ...spine_classes import default_palette
from ..classes import ClassTable, parse_dataset_json_labels, parse_palette
from .base import ClassNames


def check_root(root: PathLike) -> Path:
    """Return ``root`` as a Path; raise if it is not a folder."""
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(
            f'dataset root {root} does not exist or is not a folder')
    return root


def find_subdir(root: Path, name: str,
                required: bool = True) -> Optional[Path]:
    """Find ``root/name``, matching the folder name case-insensitively.

    Args:
        root (Path): Parent folder.
        name (str): Folder name.
        required (bool): Raise when absent instead of returning None.

    Returns:
        Path | None: The folder.
    """
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


def list_files(folder: Optional[Path], suffixes) -> List[Path]:
    """Visible files in ``folder`` whose name ends with one of suffixes."""
    if folder is None:
        return []
    suffixes = tuple(s.lower() for s in suffixes)
    return sorted(
        p for p in folder.iterdir() if p.is_file()
        and not p.name.startswith('.') and p.name.lower().endswith(suffixes))


def parse_classes(classes: ClassNames) -> Optional[List[str]]:
    """Class names from a list or a comma-separated string (None stays)."""
    if classes is None:
        return None
    if isinstance(classes, str):
        classes = classes.split(',')
    names = [str(c).strip() for c in classes]
    if not names or any(not n for n in names):
        raise ValueError(f'classes {list(classes)!r} contains empty names; '
                         'give comma-separated names, background first')
    return names


def slice_axis_from_json(meta: Mapping, display: str) -> Optional[int]:
    """The ``slice_axis`` of a ``dataset.json`` (None when absent)."""
    if 'slice_axis' not in meta or meta['slice_axis'] is None:
        return None
    axis = meta['slice_axis']
    if isinstance(axis, bool) or not isinstance(axis, int) or not (
            -3 <= axis <= 2):
        raise DatasetFormatError(
            f"{display}: 'slice_axis' must be 0, 1 or 2, got {axis!r}")
    return axis % 3


def table_from_dataset_json(meta: Mapping, display: str,
                            classes: Optional[List[str]]) -> ClassTable:
    """The class table of a ``dataset.json``, optionally renamed.

    Args:
        meta (Mapping): The loaded ``dataset.json``.
        display (str): Its name in error messages.
        classes (list[str], optional): New names (same count and order).

    Returns:
        ClassTable: Names, label values and palette.
    """
    if 'labels' not in meta:
        raise DatasetFormatError(
            f"{display}: no 'labels' key; add {{\"background\": 0, ...}} "
            'mapping class names to label values')
    names, values = parse_dataset_json_labels(meta['labels'], display)
    ignore_value = None
    if 'ignore' in names[1:]:  # nnU-Net v2: unannotated voxels
        i = names.index('ignore')
        ignore_value = values.pop(i)
        names.pop(i)
    palette = (
        parse_palette(meta['palette'], names, display)
        if meta.get('palette') is not None else default_palette(len(names)))
    table = ClassTable.from_values(names, values, palette)
    if classes is not None:
        table = table.rename(classes, f"{display} 'labels'")
    return table.with_ignore_value(ignore_value, f"{display} 'labels'")
