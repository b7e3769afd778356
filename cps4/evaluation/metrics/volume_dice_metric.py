# Copyright (c) CPS4 contributors. All rights reserved.
import csv
import json
import logging
import math
import os.path as osp
from collections import OrderedDict, defaultdict
from typing import Dict, List, Optional, Sequence

import numpy as np
import torch
from mmengine.dist import is_main_process
from mmengine.evaluator import BaseMetric
from mmengine.logging import MMLogger, print_log
from mmengine.structures import BaseDataElement
from mmengine.utils import mkdir_or_exist
from prettytable import PrettyTable

from mmseg.registry import METRICS, MODELS
from ..functional import (aggregate_dice, dice_from_areas, hd95_per_class,
                          intersect_and_areas)

REQUIRED_META_KEYS = ('case_id', 'slice_idx', 'n_slices', 'spacing')


def _to_numpy_map(data) -> np.ndarray:
    """Turn a ``(1, H, W)`` or ``(H, W)`` tensor/array into an (H, W) array."""
    if isinstance(data, torch.Tensor):
        data = data.detach().cpu().numpy()
    data = np.asarray(data)
    if data.ndim == 3 and data.shape[0] == 1:
        data = data[0]
    if data.ndim != 2:
        raise ValueError(f'expected a (1, H, W) or (H, W) label map, got '
                         f'shape {data.shape}')
    return data


def _compact(label_map: np.ndarray) -> np.ndarray:
    """Store a label map with the smallest unsigned dtype that holds it."""
    if label_map.size == 0:
        return label_map.astype(np.uint8)
    low, high = int(label_map.min()), int(label_map.max())
    if low >= 0 and high <= np.iinfo(np.uint8).max:
        return label_map.astype(np.uint8)
    if low >= 0 and high <= np.iinfo(np.uint16).max:
        return label_map.astype(np.uint16)
    return label_map.astype(np.int32)


def _percent(value: float) -> float:
    """Fraction -> percent rounded like mmseg (nan stays nan)."""
    return float(np.round(value * 100, 2))


def _fmt(value: float) -> str:
    return '-' if math.isnan(value) else f'{value:.2f}'


@METRICS.register_module()
class VolumeDiceMetric(BaseMetric):
    """Volume- and slice-level Dice (and optional HD95) for sliced volumes.

    The dataset feeds 2D slices cut from 3D volumes; this metric regroups the
    slices of each case (``case_id``) in ``slice_idx`` order and scores each
    volume as a whole, which is what spine segmentation papers report.

    Definitions (``P``/``G``: prediction/ground-truth voxels of class ``k``;
    voxels whose ground truth is ``ignore_index`` are removed from both):

    * **Volume Dice** of class ``k`` on volume ``v``:
      ``2|P∩G| / (|P|+|G|)`` over all voxels of ``v``. If ``k`` is absent from
      both ``P`` and ``G`` of ``v`` it is undefined and left out of every mean
      (it is *not* counted as 1); if it is present in only one it is 0.
    * **Per-class volume Dice** (``Dice.<class>``): mean over the volumes
      where it is defined. **mDice**: mean over classes of the defined
      per-class values; the background (class index 0) is excluded unless
      ``include_background=True``.
    * **Slice Dice** (``slice_Dice.<class>``, ``slice_mDice``): the same
      rules with each 2D slice as the unit.
    * **HD95** (``hd95=True``): the 95th percentile of the symmetric surface
      distance, in mm, of class ``k`` on the 3D volume, using the 3D voxel
      spacing. Surfaces are the voxels removed by one face-connected
      erosion; distances from each surface to the other are pooled in both
      directions (MedPy's ``hd95``). It is computed only where ``k`` is
      present in both ``P`` and ``G``. When ``k`` is present in exactly one
      of them the distance is unbounded; rather than inventing a penalty
      (e.g. the volume diagonal), the pair is left out of ``HD95.<class>`` /
      ``mHD95`` and counted in ``hd95_missing`` (the Dice of that pair is 0,
      so the failure is still visible there). Per-class HD95 is the mean over
      volumes where defined and ``mHD95`` the mean over the selected
      classes, as for Dice.

    All Dice values are returned in percent (x100) and rounded to two
    decimals, as mmseg's ``IoUMetric`` does; HD95 is in mm.

    Slices are stacked in ``slice_idx`` order. When only part of a case is
    evaluated (fewer slices than ``n_slices`` or gaps in ``slice_idx``), Dice
    uses the slices that are present and HD95 stacks the present slices
    contiguously, which understates distances across gaps; a warning is
    logged once per evaluation.

    The pipeline must pack the slice metadata, e.g.
    ``dict(type='PackSegInputs', meta_keys=(..., 'case_id', 'slice_idx',
    'n_slices', 'spacing'))``, where ``spacing`` is ``(row, column, slice)``
    spacing in mm: the 2D pixel spacing followed by the distance between
    slices.

    To stay memory-light, ``process`` keeps per slice only the per-class
    voxel counts (which add up to volume counts) and, only when ``hd95`` is
    enabled, the prediction and ground truth as compact ``uint8`` arrays.

    Args:
        ignore_index (int): Ground-truth label ignored in evaluation.
            Defaults to 255.
        include_background (bool): Whether class 0 takes part in ``mDice``,
            ``slice_mDice`` and ``mHD95`` and gets its own keys in the
            returned dict. Defaults to False.
        hd95 (bool): Whether to compute the 3D HD95. Defaults to False.
        collect_device (str): Device used to collect results across ranks,
            ``'cpu'`` or ``'gpu'``. Defaults to ``'cpu'``.
        prefix (str, optional): Prefix added to the metric names.
            Defaults to None.
        output_dir (str, optional): If given, the per-case table
            (``self.last_case_results``) is written there as
            ``volume_metrics_per_case.csv`` and ``.json`` after each
            evaluation. Defaults to None.
        refiner (dict, optional): Config of a post-process that rewrites
            each slice's prediction from its ``seg_logits`` before scoring,
            e.g. ``dict(type='AnatomicalOrderRefiner')`` (levels put in
            anatomical order: the "+order" rows of the results); it gets
            the classes of ``dataset_meta``. Defaults to None.

    Attributes:
        last_case_results (list[dict]): Set by :meth:`compute_metrics` (on
            the main process): one flat dict per case, sorted by ``case_id``,
            with ``case_id``, ``n_slices``, ``n_evaluated_slices``,
            ``Dice.<class>`` (percent) for every class and, with ``hd95``,
            ``HD95.<class>`` (mm) for the selected classes; ``nan`` where
            undefined.

    Returns of :meth:`compute_metrics` (keys, before ``prefix``):
        ``mDice``, ``slice_mDice``, ``Dice.<class>`` and
        ``slice_Dice.<class>`` for each selected class and, with ``hd95``,
        ``mHD95``, ``HD95.<class>`` and ``hd95_missing``. ``<class>`` comes
        from ``dataset_meta['classes']`` or is the class index when no
        metadata is set.
    """

    def __init__(self,
                 ignore_index: int = 255,
                 include_background: bool = False,
                 hd95: bool = False,
                 collect_device: str = 'cpu',
                 prefix: Optional[str] = None,
                 output_dir: Optional[str] = None,
                 refiner: Optional[dict] = None) -> None:
        super().__init__(collect_device=collect_device, prefix=prefix)
        self.refiner = MODELS.build(refiner) if refiner else None
        self._refiner_classes = None
        self.ignore_index = ignore_index
        self.include_background = include_background
        self.hd95 = hd95
        self.output_dir = output_dir
        if self.output_dir and is_main_process():
            mkdir_or_exist(self.output_dir)
        self.last_case_results: List[dict] = []

    # ------------------------------------------------------------------ #
    # helpers
    # ------------------------------------------------------------------ #
    def _meta_num_classes(self) -> Optional[int]:
        if self.dataset_meta and self.dataset_meta.get('classes'):
            return len(self.dataset_meta['classes'])
        return None

    def _class_names(self, num_classes: int) -> List[str]:
        if self.dataset_meta and self.dataset_meta.get('classes'):
            return [str(name) for name in self.dataset_meta['classes']]
        return [str(i) for i in range(num_classes)]

    @staticmethod
    def _check_meta(data_sample: dict) -> None:
        missing = [key for key in REQUIRED_META_KEYS if key not in data_sample]
        if missing:
            raise KeyError(
                f'VolumeDiceMetric needs the slice metainfo {missing}, which '
                f'is missing from the data sample. The test pipeline must '
                f'pack {list(REQUIRED_META_KEYS)} via '
                f'PackSegInputs(meta_keys=(..., "case_id", "slice_idx", '
                f'"n_slices", "spacing")).')

    def _prediction(self, data_sample: dict) -> np.ndarray:
        """The slice's prediction, rewritten by the refiner if one is set."""
        if self.refiner is None:
            return _to_numpy_map(data_sample['pred_sem_seg']['data'])
        if 'seg_logits' not in data_sample:
            raise KeyError('VolumeDiceMetric(refiner=...) needs the '
                           "predictions' seg_logits, which the data sample "
                           'does not hold')
        classes = (self.dataset_meta or {}).get('classes')
        if classes is None:
            raise ValueError('VolumeDiceMetric(refiner=...) needs the class '
                             'names of dataset_meta')
        if self._refiner_classes != list(classes):
            self.refiner.set_classes(classes)
            self._refiner_classes = list(classes)
        logits = torch.as_tensor(data_sample['seg_logits']['data'])
        labels, _ = self.refiner(logits.float().softmax(0)[None])
        return labels[0].cpu().numpy()

    # ------------------------------------------------------------------ #
    # BaseMetric interface
    # ------------------------------------------------------------------ #
    def process(self, data_batch: dict, data_samples: Sequence[dict]) -> None:
        """Store per-slice counts (and compact label maps for HD95).

        Args:
            data_batch (dict): A batch of data from the dataloader (unused).
            data_samples (Sequence[dict]): Model outputs as dicts (or
                ``SegDataSample``) with ``pred_sem_seg.data``,
                ``gt_sem_seg.data`` and the slice metainfo.
        """
        num_classes = self._meta_num_classes()
        for data_sample in data_samples:
            if isinstance(data_sample, BaseDataElement):
                data_sample = data_sample.to_dict()
            self._check_meta(data_sample)
            pred = self._prediction(data_sample)
            gt = _to_numpy_map(data_sample['gt_sem_seg']['data'])
            if pred.shape != gt.shape:
                raise ValueError(
                    f'prediction {pred.shape} and ground truth {gt.shape} of '
                    f'case {data_sample["case_id"]} slice '
                    f'{data_sample["slice_idx"]} differ in shape')
            spacing = tuple(
                float(s) for s in np.asarray(data_sample['spacing']).ravel())
            if len(spacing) != 3:
                raise ValueError(
                    f'spacing must be (row, column, slice) in mm, got '
                    f'{data_sample["spacing"]}')

            k = num_classes
            if k is None:  # no metadata: classes 0 .. largest label seen
                valid_gt = gt[gt != self.ignore_index]
                k = int(max(pred.max(initial=0), valid_gt.max(initial=0))) + 1
            counts = np.stack(
                intersect_and_areas(pred, gt, k, self.ignore_index))
            result = dict(
                case_id=str(data_sample['case_id']),
                slice_idx=int(data_sample['slice_idx']),
                n_slices=int(data_sample['n_slices']),
                spacing=spacing,
                counts=counts)
            if self.hd95:
                result['pred'] = _compact(pred)
                result['gt'] = _compact(gt)
            self.results.append(result)

    def compute_metrics(self, results: list) -> Dict[str, float]:
        """Group slices by case, rebuild volumes and compute the metrics.

        Args:
            results (list): Per-slice results from all ranks.

        Returns:
            Dict[str, float]: See the class docstring for the keys.
        """
        logger: MMLogger = MMLogger.get_current_instance()
        self.last_case_results = []
        if not results:
            print_log(
                'VolumeDiceMetric got no results to evaluate.',
                logger=logger,
                level=logging.WARNING)
            return OrderedDict()
        num_classes = self._meta_num_classes()
        if num_classes is None:
            num_classes = max(r['counts'].shape[1] for r in results)
        class_names = self._class_names(num_classes)
        selected = list(
            range(0 if self.include_background else 1, num_classes))

        cases = defaultdict(list)
        for result in results:
            cases[result['case_id']].append(result)

        slice_dice, volume_dice, volume_hd95 = [], [], []
        hd95_missing = np.zeros(num_classes, dtype=np.int64)
        partial_cases = []
        case_results = []
        for case_id in sorted(cases):
            case = self._evaluate_case(case_id, cases[case_id], num_classes,
                                       class_names, selected)
            slice_dice.append(case['slice_dice'])
            volume_dice.append(case['dice'])
            if self.hd95:
                volume_hd95.append(case['hd95'])
                hd95_missing += case['hd95_missing']
            if case['partial']:
                partial_cases.append(case_id)
            case_results.append(case['row'])

        if partial_cases:
            print_log(
                f'{len(partial_cases)} case(s) are evaluated on part of '
                f'their slices (e.g. {partial_cases[:5]}): Dice uses the '
                f'slices present and HD95 stacks them contiguously in '
                f'slice_idx order.',
                logger=logger,
                level=logging.WARNING)

        per_class_vol, mdice = aggregate_dice(
            np.stack(volume_dice), self.include_background)
        per_class_slice, slice_mdice = aggregate_dice(
            np.concatenate(slice_dice), self.include_background)
        defined_volumes = (~np.isnan(np.stack(volume_dice))).sum(axis=0)

        metrics = OrderedDict(
            mDice=_percent(mdice), slice_mDice=_percent(slice_mdice))
        for k in selected:
            metrics[f'Dice.{class_names[k]}'] = _percent(per_class_vol[k])
        for k in selected:
            metrics[f'slice_Dice.{class_names[k]}'] = _percent(
                per_class_slice[k])
        if self.hd95:
            # same averaging rule as Dice: over defined volumes, then classes
            per_class_hd95, mhd95 = aggregate_dice(
                np.stack(volume_hd95), self.include_background)
            metrics['mHD95'] = float(np.round(mhd95, 2))
            for k in selected:
                metrics[f'HD95.{class_names[k]}'] = float(
                    np.round(per_class_hd95[k], 2))
            metrics['hd95_missing'] = int(hd95_missing[selected].sum())

        self._log_table(class_names, selected, per_class_vol,
                        per_class_slice,
                        per_class_hd95 if self.hd95 else None, hd95_missing,
                        defined_volumes, len(cases), len(results), logger)
        self.last_case_results = case_results
        if self.output_dir is not None:
            self._dump_case_results(case_results, logger)
        return metrics

    # ------------------------------------------------------------------ #
    # internals
    # ------------------------------------------------------------------ #
    def _evaluate_case(self, case_id: str, slices: List[dict],
                       num_classes: int, class_names: List[str],
                       selected: List[int]) -> dict:
        """Dice (per slice and per volume) and HD95 of one case.

        Returns:
            dict: ``slice_dice`` (S, K), ``dice`` (K,), ``hd95`` (K,) and
            ``hd95_missing`` (K,) when HD95 is on, ``partial`` (not all
            slices present or not contiguous) and ``row`` (the case's
            line of the per-case table).
        """
        slices = sorted(slices, key=lambda r: r['slice_idx'])
        indices = [r['slice_idx'] for r in slices]
        if len(set(indices)) != len(indices):
            raise ValueError(f'case {case_id} has duplicated slice_idx '
                             f'values: {indices}')
        n_slices = slices[0]['n_slices']
        if any(r['n_slices'] != n_slices for r in slices):
            raise ValueError(f'case {case_id} has inconsistent n_slices')
        partial = len(slices) != n_slices or \
            indices[-1] - indices[0] + 1 != len(indices)

        counts = np.stack([
            np.pad(r['counts'],
                   ((0, 0), (0, num_classes - r['counts'].shape[1])))
            for r in slices
        ])
        case_dice = dice_from_areas(*counts.sum(axis=0))
        row = OrderedDict(
            case_id=case_id, n_slices=n_slices,
            n_evaluated_slices=len(slices))
        row.update((f'Dice.{name}', float(value * 100))
                   for name, value in zip(class_names, case_dice))
        out = dict(
            slice_dice=dice_from_areas(*counts.transpose(1, 0, 2)),
            dice=case_dice,
            partial=partial,
            row=row)
        if self.hd95:
            case_hd95 = self._case_hd95(case_id, slices, num_classes,
                                        selected)
            volume_counts = counts.sum(axis=0)
            out.update(
                hd95=case_hd95,
                hd95_missing=(volume_counts[1] > 0) ^ (volume_counts[2] > 0))
            row.update((f'HD95.{class_names[k]}', float(case_hd95[k]))
                       for k in selected)
        return out

    def _log_table(self, class_names: List[str], selected: List[int],
                   per_class_vol: np.ndarray, per_class_slice: np.ndarray,
                   per_class_hd95: Optional[np.ndarray],
                   hd95_missing: np.ndarray, defined_volumes: np.ndarray,
                   n_cases: int, n_slices: int, logger: MMLogger) -> None:
        """Log the per-class table (Dice per volume and slice, HD95)."""
        table = PrettyTable()
        table.add_column('Class', class_names)
        table.add_column('Dice (vol)', [_fmt(v * 100) for v in per_class_vol])
        table.add_column('Dice (slice)',
                         [_fmt(v * 100) for v in per_class_slice])
        if per_class_hd95 is not None:
            table.add_column('HD95 (mm)', [
                _fmt(v) if k in selected else '-'
                for k, v in enumerate(per_class_hd95)
            ])
            table.add_column('HD95 missing', [
                str(v) if k in selected else '-'
                for k, v in enumerate(hd95_missing)
            ])
        table.add_column('Volumes with class', defined_volumes.tolist())
        print_log(
            f'per class results ({n_cases} volumes, {n_slices} slices):',
            logger)
        print_log('\n' + table.get_string(), logger=logger)

    def _case_hd95(self, case_id: str, slices: List[dict], num_classes: int,
                   selected: List[int]) -> np.ndarray:
        """HD95 of one case, slices already sorted by ``slice_idx``."""
        shapes = {r['pred'].shape for r in slices}
        if len(shapes) != 1:
            raise ValueError(f'slices of case {case_id} differ in shape: '
                             f'{sorted(shapes)}; HD95 needs equal shapes')
        pred = np.stack([r['pred'] for r in slices])
        gt = np.stack([r['gt'] for r in slices])
        row, col, between = slices[0]['spacing']
        # the stacked arrays are (slice, row, column)
        return hd95_per_class(
            pred,
            gt,
            num_classes, (between, row, col),
            ignore_index=self.ignore_index,
            classes=selected)

    def _dump_case_results(self, case_results: List[dict],
                           logger: MMLogger) -> None:
        """Write the per-case table as CSV and JSON (``nan`` -> empty/null)."""
        mkdir_or_exist(self.output_dir)
        fields = list(case_results[0].keys()) if case_results else []

        def clean(value):
            if isinstance(value, float) and math.isnan(value):
                return None
            return value

        csv_path = osp.join(self.output_dir, 'volume_metrics_per_case.csv')
        with open(csv_path, 'w', newline='') as f:
            writer = csv.DictWriter(f, fieldnames=fields)
            writer.writeheader()
            for row in case_results:
                writer.writerow({
                    key: '' if clean(value) is None else value
                    for key, value in row.items()
                })
        json_path = osp.join(self.output_dir, 'volume_metrics_per_case.json')
        with open(json_path, 'w') as f:
            rows = [{k: clean(v) for k, v in row.items()}
                    for row in case_results]
            json.dump(rows, f, indent=2)
        print_log(
            f'per-case results are saved to {csv_path} and {json_path}',
            logger=logger)
