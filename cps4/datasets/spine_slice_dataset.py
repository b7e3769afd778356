"""2D sagittal slices of spine volumes, as written by the dataset converters."""
import os.path as osp
from typing import List, Optional, Sequence, Union

import numpy as np
from mmengine.fileio import get_local_path
from mmengine.logging import print_log
from mmseg.datasets import BaseSegDataset
from mmseg.registry import DATASETS
from PIL import Image

from .meta import dataset_orientation, read_meta
from .splits import load_split

SUBSETS = ('labelled', 'unlabelled', 'val', 'test')


@DATASETS.register_module()
class SpineSliceDataset(BaseSegDataset):
    """Slices of the cases of one split subset of a converted spine dataset.

    The folder ``data_root`` is the output of ``tools/dataset_converters``::

        data_root/
            images/<case_id>_<slice:04d>.png   per-case normalised uint8
            labels/<case_id>_<slice:04d>.png   class indices 0..K-1
            meta.json                          classes, palette, cases
            splits/seed{S}_{P}pct.json         labelled/unlabelled/val/test

    Class names and palette come from ``meta.json``, so datasets with any
    number of spine units work without code changes. Every sample carries
    ``case_id``, ``slice_idx``, ``n_slices`` and ``spacing`` (row, column
    and between-slice spacing in mm) so that predictions can be reassembled
    into volumes by :class:`cps4.evaluation.VolumeDiceMetric`; list them in
    ``PackSegInputs(meta_keys=...)``.

    Args:
        data_root (str): The converted dataset folder.
        split (str): Split file, relative to ``data_root`` or absolute.
        subset (str | Sequence[str]): Which subset(s) of the split to use:
            ``'labelled'``, ``'unlabelled'``, ``'val'`` or ``'test'``.
        skip_empty (bool): Drop slices whose label map holds background
            only (lateral slices without spine). Only meaningful for
            training; evaluation must keep every slice of a volume.
            Defaults to False.
        with_label (bool): Whether to attach ``seg_map_path``. Set False for
            unlabelled training data. Defaults to True.
        **kwargs: Passed to :class:`mmseg.datasets.BaseSegDataset`.
    """

    METAINFO = dict(classes=None, palette=None)

    def __init__(self,
                 data_root: str,
                 split: str,
                 subset: Union[str, Sequence[str]] = 'labelled',
                 skip_empty: bool = False,
                 with_label: bool = True,
                 metainfo: Optional[dict] = None,
                 **kwargs) -> None:
        self.split = split
        self.subsets = [subset] if isinstance(subset, str) else list(subset)
        unknown = [s for s in self.subsets if s not in SUBSETS]
        if unknown:
            raise ValueError(f'SpineSliceDataset: unknown subset(s) {unknown}'
                             f'; choose from {SUBSETS}.')
        self.skip_empty = skip_empty
        self.with_label = with_label
        self.meta = self._read_meta(data_root)
        # label values, slice axis and orientation travel in checkpoints
        # (dataset_meta) so that tools/infer.py slices a volume as the
        # training cases were sliced and writes the source label values
        file_meta = dict(
            classes=tuple(self.meta['classes']),
            palette=[list(c) for c in self.meta['palette']],
            label_values=list(self.meta['label_values']),
            slice_axis=int(self.meta['slice_axis']),
            orientation=dataset_orientation(self.meta))
        if metainfo:
            file_meta.update(metainfo)
        if len(file_meta['palette']) != len(file_meta['classes']):
            raise ValueError(
                f'{osp.join(data_root, "meta.json")}: {len(file_meta["palette"])}'
                f' palette colours for {len(file_meta["classes"])} classes.')
        kwargs.setdefault('img_suffix', '.png')
        kwargs.setdefault('seg_map_suffix', '.png')
        super().__init__(data_root=data_root, metainfo=file_meta, **kwargs)

    @staticmethod
    def _read_meta(data_root: str) -> dict:
        path = osp.join(data_root, 'meta.json')
        if not osp.isfile(path):
            raise FileNotFoundError(
                f'{path} not found: `data_root` must be a folder written by '
                'tools/dataset_converters (e.g. `python tools/dataset_converters'
                '/nnunet.py RAW_DIR DATA_ROOT`); set it with '
                '--cfg-options train_dataloader.dataset.data_root=...')
        return read_meta(data_root)

    def _split_path(self) -> str:
        if osp.isabs(self.split) or self.data_root is None:
            return self.split
        return osp.join(self.data_root, self.split)

    def load_data_list(self) -> List[dict]:
        """Build one sample per slice of every case in the chosen subsets."""
        split_path = self._split_path()
        if not osp.isfile(split_path):
            raise FileNotFoundError(
                f'split file {split_path} not found; write it with '
                '`python tools/dataset_converters/make_splits.py DATA_ROOT '
                '--seeds S --ratios R`.')
        split = load_split(split_path)
        case_ids = []
        for subset in self.subsets:
            if subset not in split:
                raise KeyError(f'{split_path}: no subset {subset!r}; it has '
                               f'{sorted(split)}.')
            case_ids += list(split[subset])
        if not case_ids:
            raise ValueError(f'{split_path}: subset(s) {self.subsets} hold no '
                             'case; choose another split or label ratio.')

        img_dir = osp.join(self.data_root, 'images')
        ann_dir = osp.join(self.data_root, 'labels')
        data_list = []
        n_skipped = 0
        for case_id in case_ids:
            case = self.meta['cases'][case_id]
            n_slices = int(case['n_slices'])
            # a case converted without a mask has no label slices: its
            # samples carry no seg_map_path (LoadHiddenAnnotations)
            has_label = case.get('label', True) is not None
            spacing = [float(s) for s in case['spacing']]
            axis = int(self.meta.get('slice_axis', 2))
            in_plane = [s for i, s in enumerate(spacing) if i != axis]
            slice_spacing = [spacing[axis]] if len(spacing) == 3 else [1.0]
            for idx in range(n_slices):
                name = f'{case_id}_{idx:04d}'
                seg_path = osp.join(ann_dir, name + self.seg_map_suffix)
                if self.skip_empty and has_label and (
                        not self._has_foreground(seg_path)):
                    n_skipped += 1
                    continue
                info = dict(
                    img_path=osp.join(img_dir, name + self.img_suffix),
                    case_id=case_id,
                    slice_idx=idx,
                    n_slices=n_slices,
                    spacing=in_plane + slice_spacing,
                    label_map=self.label_map,
                    reduce_zero_label=self.reduce_zero_label,
                    seg_fields=[])
                if self.with_label and has_label:
                    info['seg_map_path'] = seg_path
                data_list.append(info)
        if n_skipped:
            print_log(f'{type(self).__name__}({self.subsets}): skipped '
                      f'{n_skipped} background-only slices, kept '
                      f'{len(data_list)} from {len(case_ids)} cases.',
                      logger='current')
        return data_list

    @staticmethod
    def _has_foreground(seg_path: str) -> bool:
        if not osp.isfile(seg_path):
            raise FileNotFoundError(f'{seg_path} not found; the converted '
                                    'dataset is incomplete, convert it again.')
        with get_local_path(seg_path) as local:
            return bool(np.any(np.asarray(Image.open(local))))
