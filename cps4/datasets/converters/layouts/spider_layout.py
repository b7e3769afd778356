"""The SPIDER layout and its mapping to the MRSpineSeg classes.

SPIDER numbers vertebrae 1..25 from the most caudal vertebra upward, 100 is
the spinal canal and 201..225 are the discs (201 below vertebra 1).
**Assumption**: vertebra 1 is L5, i.e. the spine is normal (five lumbar
vertebrae, no lumbosacral transitional vertebra), so 1..9 map to L5..T9 and
201..209 to L5/S..T9/T10 of the MRSpineSeg class list; higher vertebrae and
discs and the canal map to background (their voxel counts are logged).
SPIDER has no sacrum label, so class ``S`` stays empty. Cases with
transitional anatomy are mislabelled by one level under this assumption;
pass a label map (``{source_value: class_name}``, merged over the default)
to change it.
"""
from __future__ import annotations

from typing import Dict, List, Mapping, Optional, Union

from mmengine.logging import print_log

from cps4.utils.fileio import DatasetFormatError, PathLike, read_json

from ...spine_classes import MRSPINESEG_CLASSES, default_palette
from ...volume_io import ITK_SUFFIXES, NIFTI_SUFFIXES, strip_suffix
from ..classes import SPIDER_DEFAULT_LABEL_MAP, ClassTable
from .base import (DATASET_LAYOUTS, BaseLayout, CaseFiles, ClassNames,
                   SourceDataset)
from .utils import check_root, find_subdir, list_files, parse_classes

SPIDER_SEQUENCES = ('t1', 't2', 't2_SPACE')

LabelMap = Union[None, PathLike, Mapping]


def load_label_map(label_map: LabelMap) -> Optional[Dict[int, str]]:
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


def spider_class_table(classes: ClassNames = None,
                       label_map: LabelMap = None) -> ClassTable:
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
    names = parse_classes(classes)
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


@DATASET_LAYOUTS.register_module(name='spider')
class SpiderLayout(BaseLayout):
    """SPIDER datasets: ``ROOT/images/<id>_<seq>.mha``, ``ROOT/masks/...``.

    Args:
        classes (str | Sequence[str], optional): Output classes the label
            map refers to; see :func:`spider_class_table`.
        sequence (str): ``'t1'``, ``'t2'`` or ``'t2_SPACE'``. Defaults to
            ``'t2'``.
        label_map (str | PathLike | Mapping, optional): ``{source_value:
            class_name}`` merged over the default SPIDER map, or a JSON file
            holding it.
    """

    name = 'spider'

    def __init__(self,
                 classes: ClassNames = None,
                 sequence: str = 't2',
                 label_map: LabelMap = None):
        super().__init__(classes)
        self.sequence = sequence
        self.label_map = label_map

    def find_cases(self, root: PathLike) -> SourceDataset:
        """Find the cases of one MR sequence, ids being the study ids.

        Args:
            root (str | PathLike): Folder holding ``images`` and ``masks``.

        Returns:
            SourceDataset: The cases.
        """
        root = check_root(root)
        sequence = self.sequence
        known = {s.lower(): s for s in SPIDER_SEQUENCES}
        if sequence.lower() not in known:
            raise ValueError(f'unknown SPIDER sequence {sequence!r}; choose '
                             f'one of {list(SPIDER_SEQUENCES)}')
        suffix = '_' + sequence.lower()
        images_dir = find_subdir(root, 'images')
        masks_dir = find_subdir(root, 'masks', required=False)

        def by_id(folder):
            found = {}
            for p in list_files(folder, ITK_SUFFIXES + NIFTI_SUFFIXES):
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
                masks.get(case_id, (masks_dir or root / 'masks') /
                          f'{case_id}_{seq}.mha'))
            for case_id in sorted(set(images) | set(masks))
        ]
        table = spider_class_table(self.classes, self.label_map)
        inverse = {}
        for value, i in sorted(table.source_to_class.items()):
            inverse[str(value)] = table.names[i]
        return SourceDataset(
            name=f'{root.name}_{seq}',
            layout=self.name,
            root=root,
            classes=table,
            cases=cases,
            label_hint='the SPIDER label map (0..25, 100, 201..225 by '
            'default); fix the mask or map them with a label map',
            extra_meta=dict(sequence=seq, label_map=inverse))
