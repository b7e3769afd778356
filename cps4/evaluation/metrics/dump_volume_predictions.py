"""Write the predicted volumes of a test run as NIfTI files."""
import logging
import os.path as osp
from collections import defaultdict
from typing import Dict, Sequence

import numpy as np
from mmengine.evaluator import BaseMetric
from mmengine.logging import print_log
from mmengine.structures import BaseDataElement
from mmengine.utils import mkdir_or_exist

from mmseg.registry import METRICS
from cps4.datasets.meta import (class_to_source_values, read_meta,
                                reassemble_volume)
from cps4.datasets.volume_io import write_nifti
from .volume_dice_metric import _compact, _to_numpy_map


@METRICS.register_module()
class DumpVolumePredictions(BaseMetric):
    """Stack the slice predictions of each case into ``<case>.nii.gz``.

    A side-output "metric" in the manner of mmdet's ``DumpDetResults``: it
    computes nothing and writes, for every case of the test set, the
    predicted mask in the case's original array shape and affine (from the
    converted dataset's ``meta.json``), holding the source label values
    (``label_values``). Files are written atomically. Slices missing from
    the run (e.g. a partial test set) are filled with background, with a
    warning. ``tools/test.py --out DIR`` adds it.

    Args:
        output_dir (str): Folder for the masks.
        data_root (str): The converted dataset (its ``meta.json`` gives the
            geometry, slice axis and label values).
        collect_device (str): ``'cpu'`` or ``'gpu'``. Defaults to ``'cpu'``.
        prefix (str, optional): Unused; kept for the BaseMetric interface.
    """

    def __init__(self,
                 output_dir: str,
                 data_root: str,
                 collect_device: str = 'cpu',
                 prefix: str = None) -> None:
        super().__init__(collect_device=collect_device, prefix=prefix)
        self.output_dir = output_dir
        self.data_root = data_root
        self.meta = read_meta(data_root)

    def process(self, data_batch: dict, data_samples: Sequence[dict]) -> None:
        for sample in data_samples:
            if isinstance(sample, BaseDataElement):
                sample = sample.to_dict()
            missing = [k for k in ('case_id', 'slice_idx', 'n_slices')
                       if k not in sample]
            if missing:
                raise KeyError(
                    f'DumpVolumePredictions needs the slice metainfo '
                    f'{missing}; pack them with PackSegInputs(meta_keys=...)')
            self.results.append(
                dict(case_id=str(sample['case_id']),
                     slice_idx=int(sample['slice_idx']),
                     n_slices=int(sample['n_slices']),
                     pred=_compact(
                         _to_numpy_map(sample['pred_sem_seg']['data']))))

    def compute_metrics(self, results: list) -> Dict[str, float]:
        cases = defaultdict(dict)
        for r in results:
            cases[r['case_id']][r['slice_idx']] = r['pred']
        mkdir_or_exist(self.output_dir)
        partial = []
        for case_id, slices in sorted(cases.items()):
            entry = self.meta['cases'].get(case_id)
            if entry is None:
                raise KeyError(f'case {case_id!r} is not in '
                               f'{osp.join(self.data_root, "meta.json")}')
            n = int(entry['n_slices'])
            if len(slices) != n:
                partial.append(case_id)
            volume = reassemble_volume(slices, n, int(self.meta['slice_axis']),
                                       fill_value=0)
            if list(volume.shape) != list(entry['shape']):
                raise ValueError(
                    f'case {case_id!r}: predictions reassemble to shape '
                    f'{list(volume.shape)}, meta.json says {entry["shape"]}; '
                    'the test pipeline must return predictions at the '
                    'original slice size')
            values = class_to_source_values(volume, self.meta['label_values'],
                                            f'case {case_id!r}')
            write_nifti(osp.join(self.output_dir, f'{case_id}.nii.gz'),
                        values, np.asarray(entry['affine']))
        if partial:
            print_log(f'{len(partial)} case(s) had missing slices, written '
                      f'as background: {partial[:5]}', logger='current',
                      level=logging.WARNING)
        print_log(f'{len(cases)} predicted volume(s) written to '
                  f'{self.output_dir}', logger='current')
        return {}
