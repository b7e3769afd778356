"""Class tables: names, source label values, palettes and value mapping.

A converted dataset stores contiguous class indices ``0..K-1`` in its label
PNGs. :class:`ClassTable` holds, for every class, its name, the source label
value it came from (``label_values``) and its display colour, plus the full
``source value -> class index`` mapping used while converting (several source
values may map to one class, e.g. SPIDER's spinal canal to background).

Tables defined here:

* :data:`MRSPINESEG_CLASSES` (from :mod:`cps4.datasets.spine_classes`): the
  20 MRSpineSeg classes; the index of a name is its source label value in
  MRSpineSeg masks.
* :data:`SPIDER_DEFAULT_LABEL_MAP`: SPIDER source values to MRSpineSeg class
  names (see :mod:`cps4.datasets.converters.layouts.spider_layout` for
  the assumption).
* :data:`DEFAULT_PALETTE` (from :mod:`cps4.datasets.spine_classes`): colours
  used when a dataset brings none.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np

from cps4.utils.fileio import DatasetFormatError

from ..spine_classes import (DEFAULT_PALETTE, MRSPINESEG_CLASSES,
                             default_palette)

__all__ = [
    'MRSPINESEG_CLASSES', 'DEFAULT_PALETTE', 'default_palette',
    'SPIDER_CANAL_VALUE', 'SPIDER_DEFAULT_LABEL_MAP', 'ClassTable',
    'parse_dataset_json_labels', 'parse_palette'
]

#: SPIDER vertebra values (1 = most caudal vertebra) kept by default.
_SPIDER_VERTEBRAE = ('L5', 'L4', 'L3', 'L2', 'L1', 'T12', 'T11', 'T10', 'T9')
#: SPIDER disc values (201 = disc below vertebra 1) kept by default.
_SPIDER_DISCS = ('L5/S', 'L4/L5', 'L3/L4', 'L2/L3', 'L1/L2', 'T12/L1',
                 'T11/T12', 'T10/T11', 'T9/T10')
SPIDER_CANAL_VALUE = 100

#: Class index of unannotated pixels in label PNGs (mmseg's ignore index).
IGNORE_INDEX = 255


def _spider_default_label_map() -> Dict[int, str]:
    mapping = {0: 'background', SPIDER_CANAL_VALUE: 'background'}
    for k in range(1, 26):
        mapping[k] = (
            _SPIDER_VERTEBRAE[k - 1]
            if k <= len(_SPIDER_VERTEBRAE) else 'background')
        mapping[200 + k] = (
            _SPIDER_DISCS[k - 1] if k <= len(_SPIDER_DISCS) else 'background')
    return dict(sorted(mapping.items()))


#: SPIDER source value -> MRSpineSeg class name. Vertebrae above T9 (values
#: 10..25), discs above T9/T10 (210..225) and the spinal canal (100) map to
#: background.
SPIDER_DEFAULT_LABEL_MAP: Dict[int, str] = _spider_default_label_map()

@dataclass
class ClassTable:
    """Classes of a converted dataset and the source values mapped to them.

    Attributes:
        names (list[str]): Class names, background first.
        label_values (list[int | None]): Representative source value of each
            class (``None`` for a class no source value maps to).
        palette (list[list[int]]): ``[r, g, b]`` per class.
        source_to_class (dict[int, int]): Every accepted source value and the
            class index it becomes.
        ignore_value (int | None): Source value of unannotated voxels of
            partially labelled masks; it becomes :data:`IGNORE_INDEX`, which
            every loss and the metric leave out.
    """

    names: List[str]
    label_values: List[Optional[int]]
    palette: List[List[int]]
    source_to_class: Dict[int, int] = field(default_factory=dict)
    ignore_value: Optional[int] = None

    def __post_init__(self):
        if not self.names:
            raise DatasetFormatError('the class table is empty')
        if len(set(self.names)) != len(self.names):
            dup = sorted({n for n in self.names if self.names.count(n) > 1})
            raise DatasetFormatError(f'duplicate class names {dup}')
        if len(self.names) > 256:
            raise DatasetFormatError(
                f'{len(self.names)} classes do not fit uint8 label PNGs')
        if len(self.label_values) != len(self.names):
            raise ValueError('label_values and names differ in length')
        if len(self.palette) != len(self.names):
            raise DatasetFormatError(
                f'the palette has {len(self.palette)} colours for '
                f'{len(self.names)} classes; give one [r, g, b] per class')
        if not self.source_to_class:
            self.source_to_class = {
                int(v): i
                for i, v in enumerate(self.label_values) if v is not None
            }

    @classmethod
    def from_values(cls,
                    names: Sequence[str],
                    values: Sequence[int],
                    palette: Optional[Sequence[Sequence[int]]] = None
                    ) -> 'ClassTable':
        """Build a one-to-one table (class ``i`` <- source ``values[i]``).

        Args:
            names (Sequence[str]): Class names, background first.
            values (Sequence[int]): Source value of each class.
            palette (Sequence[Sequence[int]], optional): Colours; defaults to
                :func:`default_palette`.

        Returns:
            ClassTable: The table.
        """
        if len(set(values)) != len(values):
            raise DatasetFormatError(f'duplicate label values {list(values)}')
        palette = (
            [list(map(int, c)) for c in palette]
            if palette is not None else default_palette(len(names)))
        return cls(
            names=list(names),
            label_values=[int(v) for v in values],
            palette=palette)

    @property
    def num_classes(self) -> int:
        """int: Number of classes."""
        return len(self.names)

    def rename(self, names: Sequence[str], origin: str) -> 'ClassTable':
        """Return a copy with new class names (same count and order).

        Args:
            names (Sequence[str]): New names.
            origin (str): Where the current table came from, for messages.

        Returns:
            ClassTable: The renamed table.
        """
        names = list(names)
        if len(names) != self.num_classes:
            raise DatasetFormatError(
                f'classes {names} has {len(names)} names but {origin} '
                f'defines {self.num_classes} classes {self.names}; give one '
                'name per class, background first')
        return ClassTable(
            names=names,
            label_values=list(self.label_values),
            palette=[list(c) for c in self.palette],
            source_to_class=dict(self.source_to_class),
            ignore_value=self.ignore_value)

    def with_ignore_value(self, value: Optional[int],
                          origin: str) -> 'ClassTable':
        """Return a copy whose source ``value`` marks unannotated voxels.

        Args:
            value (int | None): The ignore value; None keeps the table.
            origin (str): Where the value came from, for messages.

        Returns:
            ClassTable: The table with :attr:`ignore_value` set.

        Raises:
            DatasetFormatError: ``value`` is not an integer or is the value
                of a class.
        """
        if value is None:
            return self
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
            raise DatasetFormatError(
                f'{origin}: the ignore label must be an integer, got '
                f'{value!r}')
        if int(value) in self.source_to_class:
            name = self.names[self.source_to_class[int(value)]]
            raise DatasetFormatError(
                f'{origin}: ignore label {int(value)} is the value of class '
                f'{name!r}; choose a value no class uses')
        table = self.rename(self.names, origin)
        table.ignore_value = int(value)
        return table

    def map_labels(self, labels: np.ndarray, display: str,
                   hint: str) -> Tuple[np.ndarray, int]:
        """Map source label values to contiguous class indices.

        Args:
            labels (np.ndarray): Integer array of source values.
            display (str): File name for error messages.
            hint (str): What the user should do about unknown values, e.g.
                "fix the mask or add them to dataset.json 'labels'".

        Returns:
            tuple[np.ndarray, int]: uint8 class-index array of the same shape,
            and the number of non-zero source voxels that became background.

        Raises:
            DatasetFormatError: ``labels`` holds values not in the table.
        """
        values, inverse = np.unique(labels, return_inverse=True)
        unknown = [int(v) for v in values if int(v) not in
                   self.source_to_class and int(v) != self.ignore_value]
        if unknown:
            raise DatasetFormatError(
                f'{display}: label values {unknown} are not in {hint}')
        lut = np.array([
            IGNORE_INDEX if int(v) == self.ignore_value else
            self.source_to_class[int(v)] for v in values
        ], dtype=np.uint8)
        mapped = lut[inverse.reshape(labels.shape)]
        dropped = (values != 0) & (lut == 0)  # ignored voxels are not 0
        n_dropped = int(np.count_nonzero(dropped[inverse.reshape(-1)]))
        return mapped, n_dropped

    def to_meta(self) -> Dict[str, list]:
        """Return the ``classes``/``palette``/``label_values`` meta fields."""
        meta = dict(
            classes=list(self.names),
            palette=[list(map(int, c)) for c in self.palette],
            label_values=[
                None if v is None else int(v) for v in self.label_values
            ])
        if self.ignore_value is not None:
            meta['ignore_value'] = int(self.ignore_value)
        return meta


def parse_dataset_json_labels(labels: Mapping, display: str
                              ) -> Tuple[List[str], List[int]]:
    """Parse a ``labels`` entry of an nnU-Net / MSD ``dataset.json``.

    Both conventions are accepted: ``{name: value}`` (nnU-Net v2) and
    ``{"value": name}`` (MSD / nnU-Net v1). Region-based labels (a list of
    values per name) are not supported.

    Args:
        labels (Mapping): The ``labels`` object.
        display (str): File name for error messages.

    Returns:
        tuple[list[str], list[int]]: Names and values sorted by value; the
        first value is 0.

    Raises:
        DatasetFormatError: The entry is malformed or has no value 0.
    """
    if not isinstance(labels, Mapping) or not labels:
        raise DatasetFormatError(
            f"{display}: 'labels' must be a non-empty object mapping class "
            'names to values (or values to names)')

    def as_int(x):
        if isinstance(x, bool):
            return None
        if isinstance(x, int):
            return x
        if isinstance(x, float) and x.is_integer():
            return int(x)
        if isinstance(x, str):
            try:
                return int(x.strip())
            except ValueError:
                return None
        return None

    pairs = []
    if all(isinstance(v, str) for v in labels.values()) and all(
            as_int(k) is not None for k in labels):
        pairs = [(as_int(k), str(v)) for k, v in labels.items()]  # v1 / MSD
    elif all(as_int(v) is not None and not isinstance(v, str)
             for v in labels.values()):
        pairs = [(as_int(v), str(k)) for k, v in labels.items()]  # v2
    else:
        bad = {k: v for k, v in labels.items() if isinstance(v, (list, dict))}
        what = (f'region-based labels {bad} are not supported'
                if bad else f'cannot interpret {dict(labels)}')
        raise DatasetFormatError(
            f"{display}: 'labels': {what}; use {{\"name\": value}} or "
            '{"value": "name"} with one integer value per class')
    pairs.sort()
    values = [v for v, _ in pairs]
    names = [n for _, n in pairs]
    if len(set(values)) != len(values):
        raise DatasetFormatError(
            f"{display}: 'labels' assigns a value to several classes: "
            f'{dict(labels)}')
    if values[0] != 0:
        raise DatasetFormatError(
            f"{display}: 'labels' has no value 0 (background): "
            f'{dict(labels)}; add the background class with value 0')
    return names, values


def parse_palette(palette, names: Sequence[str],
                  display: str) -> List[List[int]]:
    """Validate a ``palette`` entry given as a list or ``{name: rgb}``.

    Args:
        palette (list | dict): ``[[r, g, b], ...]`` in class order or
            ``{name: [r, g, b]}`` covering every class.
        names (Sequence[str]): Class names in order.
        display (str): File name for error messages.

    Returns:
        list[list[int]]: One colour per class.
    """
    if isinstance(palette, Mapping):
        missing = [n for n in names if n not in palette]
        if missing:
            raise DatasetFormatError(
                f"{display}: 'palette' has no colour for classes {missing}")
        palette = [palette[n] for n in names]
    if not isinstance(palette, (list, tuple)) or len(palette) != len(names):
        raise DatasetFormatError(
            f"{display}: 'palette' must give one [r, g, b] per class "
            f'({len(names)} classes)')
    out = []
    for colour in palette:
        if (not isinstance(colour, (list, tuple)) or len(colour) != 3
                or not all(isinstance(c, int) and 0 <= c <= 255
                           for c in colour)):
            raise DatasetFormatError(
                f"{display}: 'palette' entry {colour!r} is not [r, g, b] "
                'with integers 0..255')
        out.append([int(c) for c in colour])
    return out
