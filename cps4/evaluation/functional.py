# Copyright (c) CPS4 contributors. All rights reserved.
"""Pure numpy segmentation metrics used by spine segmentation papers.

All functions work on label maps of any dimensionality (a 2D slice or a 3D
volume) and return per-class arrays in which ``nan`` marks an undefined value.
Dice values are fractions in ``[0, 1]``; HD95 values are in the unit of
``spacing`` (millimetres for medical images).

Conventions shared by every function:

* Voxels whose ground-truth label equals ``ignore_index`` are removed from
  both the prediction and the ground truth before anything is counted.
* Labels outside ``[0, num_classes)`` (other than ``ignore_index``) are not
  counted for any class.
* A class absent from both the prediction and the ground truth has no
  defined score (``nan``); it is *not* counted as a perfect match.
"""
from typing import Optional, Sequence, Tuple

import numpy as np
from scipy import ndimage

__all__ = [
    'intersect_and_areas', 'dice_from_areas', 'dice_per_class', 'hd95_binary',
    'hd95_per_class', 'aggregate_dice', 'foreground_dice', 'class_dice'
]


def _class_histogram(labels: np.ndarray, num_classes: int) -> np.ndarray:
    """Count the voxels of each class ``0 .. num_classes - 1``."""
    labels = labels[(labels >= 0) & (labels < num_classes)]
    return np.bincount(labels.astype(np.int64), minlength=num_classes)


def intersect_and_areas(
    pred: np.ndarray,
    gt: np.ndarray,
    num_classes: int,
    ignore_index: Optional[int] = 255
) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Count, per class, the voxels in ``P ∩ G``, ``P`` and ``G``.

    These counts are additive: summing them over the slices of a volume
    gives the counts of the volume, which is how volume Dice can be obtained
    without keeping the slices in memory.

    Args:
        pred (np.ndarray): Predicted label map of any shape.
        gt (np.ndarray): Ground-truth label map, same shape as ``pred``.
        num_classes (int): Number of classes ``K``.
        ignore_index (int, optional): Ground-truth label excluded from both
            maps. ``None`` disables ignoring. Defaults to 255.

    Returns:
        tuple[np.ndarray]: ``(area_intersect, area_pred, area_gt)``, three
        int64 arrays of shape ``(K,)``.
    """
    pred = np.asarray(pred)
    gt = np.asarray(gt)
    if pred.shape != gt.shape:
        raise ValueError(f'pred and gt shapes differ: {pred.shape} vs '
                         f'{gt.shape}')
    if ignore_index is not None:
        valid = gt != ignore_index
        pred = pred[valid]
        gt = gt[valid]
    area_intersect = _class_histogram(pred[pred == gt], num_classes)
    area_pred = _class_histogram(pred, num_classes)
    area_gt = _class_histogram(gt, num_classes)
    return area_intersect, area_pred, area_gt


def dice_from_areas(area_intersect: np.ndarray, area_pred: np.ndarray,
                    area_gt: np.ndarray) -> np.ndarray:
    """Dice ``2|P∩G| / (|P|+|G|)`` from voxel counts.

    Args:
        area_intersect (np.ndarray): ``|P∩G|`` per class, shape ``(..., K)``.
        area_pred (np.ndarray): ``|P|`` per class, same shape.
        area_gt (np.ndarray): ``|G|`` per class, same shape.

    Returns:
        np.ndarray: Float64 Dice of the same shape, ``nan`` where
        ``|P| + |G| == 0`` (class absent from both).
    """
    denominator = np.asarray(
        area_pred, dtype=np.float64) + np.asarray(
            area_gt, dtype=np.float64)
    dice = np.full(denominator.shape, np.nan, dtype=np.float64)
    defined = denominator > 0
    dice[defined] = 2.0 * np.asarray(
        area_intersect, dtype=np.float64)[defined] / denominator[defined]
    return dice


def dice_per_class(pred: np.ndarray,
                   gt: np.ndarray,
                   num_classes: int,
                   ignore_index: Optional[int] = 255) -> np.ndarray:
    """Per-class Dice between two label maps.

    Args:
        pred (np.ndarray): Predicted label map of any shape.
        gt (np.ndarray): Ground-truth label map, same shape as ``pred``.
        num_classes (int): Number of classes ``K``.
        ignore_index (int, optional): Ground-truth label excluded from both
            maps. Defaults to 255.

    Returns:
        np.ndarray: Dice of shape ``(K,)``: ``nan`` where the class is absent
        from both maps, ``0`` where it is present in only one.
    """
    return dice_from_areas(
        *intersect_and_areas(pred, gt, num_classes, ignore_index))


def foreground_dice(pred: np.ndarray,
                    gt: np.ndarray,
                    num_classes: int,
                    ignore_index: int = 255) -> float:
    """Mean Dice over the foreground classes present in ``gt``.

    The per-iteration score of pseudo labels against the hidden labels of
    unlabelled slices: the counts of :func:`intersect_and_areas`, averaged
    over the classes (background, 0, excluded) that occur in ``gt``.

    Args:
        pred (np.ndarray): Predicted labels.
        gt (np.ndarray): Ground-truth labels, same shape.
        num_classes (int): Number of classes, background included.
        ignore_index (int): Label value left out.

    Returns:
        float: Dice in ``[0, 1]``; ``nan`` when ``gt`` has no foreground
        class.
    """
    inter, area_pred, area_gt = intersect_and_areas(pred, gt, num_classes,
                                                    ignore_index)
    present = area_gt[1:] > 0
    if not present.any():
        return float('nan')
    return float(dice_from_areas(inter, area_pred, area_gt)[1:][present].mean())


def _surface(mask: np.ndarray, structure: np.ndarray) -> np.ndarray:
    """Voxels of ``mask`` with at least one face-neighbour outside it."""
    return mask & ~ndimage.binary_erosion(
        mask, structure=structure, border_value=0)


def hd95_binary(pred_mask: np.ndarray, gt_mask: np.ndarray,
                spacing: Sequence[float]) -> float:
    """95th percentile of the symmetric surface distance of two masks.

    Surfaces are the mask voxels removed by one binary erosion with the
    face-connected structuring element (voxels on the array border count as
    surface). The distances from every surface voxel of one mask to the
    nearest surface voxel of the other, in both directions, are pooled and
    their 95th percentile (linear interpolation, as ``np.percentile`` and
    MedPy) is returned.

    Args:
        pred_mask (np.ndarray): Boolean mask of any dimensionality.
        gt_mask (np.ndarray): Boolean mask, same shape as ``pred_mask``.
        spacing (Sequence[float]): Voxel size along each axis of the arrays,
            e.g. ``(slice, row, column)`` spacing for a stacked volume.

    Returns:
        float: HD95 in the unit of ``spacing``, ``nan`` if either mask is
        empty.
    """
    pred_mask = np.asarray(pred_mask, dtype=bool)
    gt_mask = np.asarray(gt_mask, dtype=bool)
    if pred_mask.shape != gt_mask.shape:
        raise ValueError(f'mask shapes differ: {pred_mask.shape} vs '
                         f'{gt_mask.shape}')
    spacing = tuple(float(s) for s in spacing)
    if len(spacing) != pred_mask.ndim:
        raise ValueError(f'spacing {spacing} does not match the '
                         f'{pred_mask.ndim}D masks')
    if not pred_mask.any() or not gt_mask.any():
        return float('nan')

    # Every surface voxel lies inside the bounding box of the union, so the
    # distance transforms can run on that box (plus a one-voxel margin that
    # keeps erosion at the box edge identical to the full array) for the same
    # result at a fraction of the cost.
    bbox = ndimage.find_objects((pred_mask | gt_mask).astype(np.uint8))[0]
    crop = tuple(
        slice(max(s.start - 1, 0), min(s.stop + 1, size))
        for s, size in zip(bbox, pred_mask.shape))
    pred_mask, gt_mask = pred_mask[crop], gt_mask[crop]

    structure = ndimage.generate_binary_structure(pred_mask.ndim, 1)
    pred_surface = _surface(pred_mask, structure)
    gt_surface = _surface(gt_mask, structure)
    dist_to_gt = ndimage.distance_transform_edt(~gt_surface, sampling=spacing)
    dist_to_pred = ndimage.distance_transform_edt(
        ~pred_surface, sampling=spacing)
    distances = np.concatenate(
        [dist_to_gt[pred_surface], dist_to_pred[gt_surface]])
    return float(np.percentile(distances, 95))


def hd95_per_class(pred: np.ndarray,
                   gt: np.ndarray,
                   num_classes: int,
                   spacing: Sequence[float],
                   ignore_index: Optional[int] = 255,
                   classes: Optional[Sequence[int]] = None) -> np.ndarray:
    """Per-class HD95 between two label maps.

    Args:
        pred (np.ndarray): Predicted label map (2D or 3D).
        gt (np.ndarray): Ground-truth label map, same shape as ``pred``.
        num_classes (int): Number of classes ``K``.
        spacing (Sequence[float]): Voxel size along each axis of the arrays.
        ignore_index (int, optional): Ground-truth label excluded from both
            maps. Defaults to 255.
        classes (Sequence[int], optional): Only compute these class indices
            (e.g. skip the background); the others are ``nan``. Defaults to
            all classes.

    Returns:
        np.ndarray: Float64 HD95 of shape ``(K,)``, ``nan`` where the class is
        missing from the prediction or the ground truth (or not requested).
    """
    pred = np.asarray(pred)
    gt = np.asarray(gt)
    if pred.shape != gt.shape:
        raise ValueError(f'pred and gt shapes differ: {pred.shape} vs '
                         f'{gt.shape}')
    valid = None if ignore_index is None else gt != ignore_index
    hd95 = np.full(num_classes, np.nan, dtype=np.float64)
    for k in (range(num_classes) if classes is None else classes):
        pred_mask = pred == k
        gt_mask = gt == k
        if valid is not None:
            pred_mask &= valid
            gt_mask &= valid
        hd95[k] = hd95_binary(pred_mask, gt_mask, spacing)
    return hd95


def _nanmean(values: np.ndarray, axis: Optional[int] = None) -> np.ndarray:
    """``np.nanmean`` that returns ``nan`` for all-nan input silently."""
    values = np.asarray(values, dtype=np.float64)
    defined = ~np.isnan(values)
    count = defined.sum(axis=axis)
    total = np.where(defined, values, 0.0).sum(axis=axis)
    with np.errstate(invalid='ignore', divide='ignore'):
        return np.where(count > 0, total / np.maximum(count, 1), np.nan)


def aggregate_dice(
        per_unit: np.ndarray,
        include_background: bool = False) -> Tuple[np.ndarray, float]:
    """Average per-unit scores over units, then over classes.

    Args:
        per_unit (np.ndarray): Scores of shape ``(U, K)`` (one row per volume
            or per slice), ``nan`` where undefined.
        include_background (bool): Whether class 0 (background) takes part
            in the mean over classes. Defaults to False.

    Returns:
        tuple[np.ndarray, float]: The per-class mean over the units where the
        score is defined, shape ``(K,)`` (``nan`` for a class never defined;
        background included), and the mean of the defined per-class values
        over the selected classes (``nan`` if none is defined).
    """
    per_unit = np.asarray(per_unit, dtype=np.float64)
    if per_unit.ndim != 2:
        raise ValueError(f'per_unit must be (U, K), got {per_unit.shape}')
    per_class = _nanmean(per_unit, axis=0).reshape(per_unit.shape[1])
    selected = per_class if include_background else per_class[1:]
    return per_class, float(_nanmean(selected))


def class_dice(metrics: dict) -> dict:
    """Per-class volume Dice from a test-metric dict (``Dice.<class>`` keys).

    A class absent from every test volume has NaN Dice; it is returned as
    ``None`` so that the record stays valid JSON and averages can skip it.
    """
    return {k[len('Dice.'):]: (v if v == v else None)
            for k, v in metrics.items() if k.startswith('Dice.')}
