"""The nnU-Net v1/v2 and Medical Segmentation Decathlon raw layout."""
from __future__ import annotations

from pathlib import Path
from typing import Dict, Mapping

from mmengine.logging import print_log

from cps4.utils.fileio import DatasetFormatError, PathLike, read_json

from .base import DATASET_LAYOUTS, BaseLayout, CaseFiles, SourceDataset
from .utils import (check_root, find_subdir, list_files, parse_classes,
                    slice_axis_from_json, table_from_dataset_json)


@DATASET_LAYOUTS.register_module(name='nnunet')
class NnUNetLayout(BaseLayout):
    """nnU-Net raw / MSD datasets.

    ``ROOT/imagesTr/<case>_0000<ending>`` (MSD: ``<case><ending>``),
    ``ROOT/labelsTr/<case><ending>`` and ``ROOT/dataset.json`` with
    ``labels`` as ``{name: value}`` (nnU-Net v2) or ``{"value": name}``
    (MSD / v1), optional ``file_ending`` (default ``.nii.gz``),
    ``orientation`` (axis codes every case is brought to, e.g. ``"RAS"``),
    ``slice_axis`` (an axis of that orientation), ``palette`` and
    ``name``. Channels other than ``_0000``
    are ignored.

    Args:
        classes (str | Sequence[str], optional): New names for the classes
            of ``dataset.json`` (same count and order).
    """

    name = 'nnunet'

    def find_cases(self, root: PathLike) -> SourceDataset:
        """Find the training cases (union of images and masks found).

        Args:
            root (str | PathLike): Folder holding ``imagesTr``,
                ``labelsTr`` and ``dataset.json``.

        Returns:
            SourceDataset: The cases.
        """
        root = check_root(root)
        meta = read_json(root / 'dataset.json', 'dataset.json')
        if not isinstance(meta, Mapping):
            raise DatasetFormatError('dataset.json: expected a JSON object')
        table = table_from_dataset_json(meta, 'dataset.json',
                                        parse_classes(self.classes))
        ending = str(meta.get('file_ending', '.nii.gz'))
        images_dir = find_subdir(root, 'imagesTr')
        labels_dir = find_subdir(root, 'labelsTr', required=False)

        labels = {
            p.name[:-len(ending)]: p
            for p in list_files(labels_dir, (ending, ))
        }
        images: Dict[str, Path] = {}
        ignored_channels = 0
        for path in list_files(images_dir, (ending, )):
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
                f'nnunet: ignoring {ignored_channels} image files of '
                'channels other than _0000 (only the first channel is '
                'converted)',
                logger='current')
        cases = []
        for case_id in sorted(set(images) | set(labels)):
            image = images.get(case_id,
                               images_dir / f'{case_id}_0000{ending}')
            label = labels.get(case_id,
                               (labels_dir or root / 'labelsTr') /
                               f'{case_id}{ending}')
            cases.append(CaseFiles(case_id, image, label))
        return SourceDataset(
            name=str(meta.get('name') or root.name),
            layout=self.name,
            root=root,
            classes=table,
            cases=cases,
            slice_axis=slice_axis_from_json(meta, 'dataset.json'),
            orientation=meta.get('orientation'),
            label_hint="dataset.json 'labels' "
            f'({dict(zip(table.names, table.label_values))}); fix the mask '
            'or add them to dataset.json')
