"""The 2D PNG layout (mmseg ``img_dir``/``ann_dir`` or images/labels)."""
from __future__ import annotations

from typing import Dict, Mapping, Optional, Tuple

import numpy as np

from cps4.utils.fileio import DatasetFormatError, PathLike, read_json

from ...volume_io import IMAGE_2D_SUFFIXES, strip_suffix
from ..classes import ClassTable
from ..io import read_image_2d
from .base import (DATASET_LAYOUTS, BaseLayout, CaseFiles, SourceDataset,
                   check_slice_axis)
from .utils import (check_root, find_subdir, list_files, parse_classes,
                    table_from_dataset_json)


@DATASET_LAYOUTS.register_module(name='png2d')
class Png2DLayout(BaseLayout):
    """2D datasets, each image a case of one slice.

    ``ROOT/img_dir/<subset>/*.png`` + ``ROOT/ann_dir/<subset>/*.png`` (mmseg
    style, with or without subset folders) or ``ROOT/images/*.png`` +
    ``ROOT/labels/*.png``. Class names come from ``classes`` (values
    ``0..K-1``) or from ``ROOT/dataset.json`` ``labels``.

    Args:
        classes (str | Sequence[str], optional): Class names, background
            first, for label values ``0..K-1``; with a ``dataset.json`` in
            the root they rename its classes instead.
    """

    name = 'png2d'

    def find_cases(self, root: PathLike) -> SourceDataset:
        """Find the cases, ids taken from the image names.

        Args:
            root (str | PathLike): Dataset root.

        Returns:
            SourceDataset: The cases.
        """
        root = check_root(root)
        names = parse_classes(self.classes)
        json_path = root / 'dataset.json'
        meta: Mapping = {}
        if json_path.is_file():
            meta = read_json(json_path, 'dataset.json')
            table = table_from_dataset_json(meta, 'dataset.json', names)
            hint = ("dataset.json 'labels' "
                    f'({dict(zip(table.names, table.label_values))}); fix '
                    'the label image or add them to dataset.json')
        elif names is not None:
            table = ClassTable.from_values(names, range(len(names)))
            hint = (f'the classes {names} (values 0..{len(names) - 1}); fix '
                    'the label image or pass more classes')
        else:
            raise ValueError(
                f'png2d: no class names for {root}; pass classes (e.g. '
                "--classes background,disc,vertebra) or add a dataset.json "
                "with 'labels'")
        cases: Dict[str, CaseFiles] = {}
        for subset, img_dir, ann_dir in self._subsets(root):
            images = {
                strip_suffix(p.name): p
                for p in list_files(img_dir, IMAGE_2D_SUFFIXES)
            }
            labels = {
                strip_suffix(p.name): p
                for p in list_files(ann_dir if ann_dir.is_dir() else None,
                                    IMAGE_2D_SUFFIXES)
            }
            for case_id in sorted(set(images) | set(labels)):
                image = images.get(case_id, img_dir / f'{case_id}.png')
                label = labels.get(case_id, ann_dir / f'{case_id}.png')
                if case_id in cases:
                    other = cases[case_id].image.relative_to(root).as_posix()
                    raise DatasetFormatError(
                        f'{image.relative_to(root).as_posix()}: case id '
                        f'{case_id!r} also used by {other}; image names '
                        'must be unique across subsets')
                cases[case_id] = CaseFiles(case_id, image, label, subset)
        return SourceDataset(
            name=str(meta.get('name') or root.name),
            layout=self.name,
            root=root,
            classes=table,
            cases=[cases[k] for k in sorted(cases)],
            is_2d=True,
            slice_axis=2,
            label_hint=hint)

    @staticmethod
    def _subsets(root):
        """``(subset, image folder, label folder)`` triples of ``root``."""
        if find_subdir(root, 'img_dir', required=False) is not None:
            img_root = find_subdir(root, 'img_dir')
            ann_root = find_subdir(root, 'ann_dir', required=False) or (
                root / 'ann_dir')
            return [(None, img_root, ann_root)] + [
                (d.name, d, ann_root / d.name)
                for d in sorted(img_root.iterdir()) if d.is_dir()
            ]
        if find_subdir(root, 'images', required=False) is not None:
            return [(None, find_subdir(root, 'images'),
                     find_subdir(root, 'labels', required=False)
                     or root / 'labels')]
        raise FileNotFoundError(
            f'{root}: neither img_dir/ + ann_dir/ nor images/ + labels/ '
            'found; check the dataset root')

    def resolve_orientation(self,
                            dataset: SourceDataset,
                            orientation: Optional[str] = None) -> None:
        """None: 2D images carry no orientation and are kept as stored."""
        if orientation is not None:
            raise ValueError('orientation does not apply to the png2d layout '
                             '(2D images are kept as stored)')
        return None

    def resolve_slice_axis(self,
                           dataset: SourceDataset,
                           slice_axis: Optional[int] = None,
                           orientation=None) -> int:
        """Always 2: the slices are stacked along a new last axis."""
        check_slice_axis(slice_axis)
        return 2

    def read_case(
        self, dataset: SourceDataset, case: CaseFiles
    ) -> Tuple[np.ndarray, Optional[np.ndarray], Tuple[float, ...],
               np.ndarray]:
        """Load one image (and label) as ``(H, W, 1)`` volumes.

        Returns:
            tuple: ``(image, label, spacing, affine)`` with unit spacing and
            an identity affine.
        """
        image = read_image_2d(case.image, dataset.rel(case.image))[..., None]
        label = None
        if case.label is not None:
            label = read_image_2d(
                case.label, dataset.rel(case.label), is_label=True)[..., None]
        return image, label, (1.0, 1.0, 1.0), np.eye(4)
