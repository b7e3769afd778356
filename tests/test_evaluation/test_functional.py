import itertools
import math
import warnings

import numpy as np
import pytest

from cps4.evaluation.functional import (aggregate_dice, dice_from_areas,
                                        dice_per_class, foreground_dice,
                                        hd95_binary, hd95_per_class,
                                        intersect_and_areas)

# gt / pred on a 2x4 image, K = 5, 255 = ignore.
#   valid pixels (row, col): gt -> pred
#   (0,0) 0->0  (0,1) 0->1  (0,2) 1->1  (0,3) 1->1
#   (1,0) 0->0  (1,1) 2->2  (1,2) 2->4  (1,3) ignored (pred 2)
GT = np.array([[0, 0, 1, 1], [0, 2, 2, 255]], dtype=np.uint8)
PRED = np.array([[0, 1, 1, 1], [0, 2, 4, 2]], dtype=np.uint8)


def test_intersect_and_areas():
    inter, area_pred, area_gt = intersect_and_areas(PRED, GT, 5)
    np.testing.assert_array_equal(inter, [2, 2, 1, 0, 0])
    np.testing.assert_array_equal(area_pred, [2, 3, 1, 0, 1])
    np.testing.assert_array_equal(area_gt, [3, 2, 2, 0, 0])


def test_dice_per_class_hand_computed():
    dice = dice_per_class(PRED, GT, num_classes=5, ignore_index=255)
    assert dice.shape == (5, )
    assert dice[0] == pytest.approx(2 * 2 / (2 + 3))  # 0.8
    assert dice[1] == pytest.approx(2 * 2 / (3 + 2))  # 0.8
    # the pred pixel under the ignored gt pixel does not count: P=1, G=2
    assert dice[2] == pytest.approx(2 * 1 / (1 + 2))
    assert math.isnan(dice[3])  # absent from both: undefined, not 1
    assert dice[4] == 0.0  # present in pred only


def test_dice_per_class_ignore_disabled():
    # 255 is then an out-of-range gt label: the pred pixel 2 over it is a
    # false positive of class 2 (P=2, G=2, I=1)
    dice = dice_per_class(PRED, GT, num_classes=5, ignore_index=None)
    assert dice[2] == pytest.approx(0.5)


def test_dice_per_class_other_ignore_index():
    gt = np.array([[1, 1, 3]])
    pred = np.array([[1, 0, 1]])
    # ignore 3 -> class 1: P=1, G=2, I=1
    dice = dice_per_class(pred, gt, num_classes=2, ignore_index=3)
    assert dice[1] == pytest.approx(2 / 3)
    assert dice[0] == 0.0


def test_dice_per_class_gt_absent_pred_present_and_perfect():
    gt = np.zeros((3, 3), dtype=np.uint8)
    pred = gt.copy()
    pred[1, 1] = 1
    dice = dice_per_class(pred, gt, num_classes=3)
    assert dice[0] == pytest.approx(2 * 8 / 17)
    assert dice[1] == 0.0
    assert math.isnan(dice[2])
    np.testing.assert_allclose(
        dice_per_class(gt, gt, num_classes=2), [1.0, np.nan])


def test_counts_are_additive_over_slices():
    rng = np.random.default_rng(0)
    gt = rng.integers(0, 4, size=(5, 6, 7))
    pred = rng.integers(0, 4, size=(5, 6, 7))
    gt[0, 0, :3] = 255
    summed = np.sum(
        [np.stack(intersect_and_areas(p, g, 4)) for p, g in zip(pred, gt)],
        axis=0)
    volume = np.stack(intersect_and_areas(pred, gt, 4))
    np.testing.assert_array_equal(summed, volume)
    np.testing.assert_allclose(
        dice_from_areas(*volume), dice_per_class(pred, gt, 4))


def test_shape_mismatch():
    with pytest.raises(ValueError, match='shape'):
        dice_per_class(np.zeros((2, 2)), np.zeros((2, 3)), 2)


def test_aggregate_dice_mean_over_defined():
    nan = np.nan
    per_unit = np.array([
        [1.0, 0.5, nan, nan],
        [0.0, nan, 0.2, nan],
        [0.5, 1.0, 0.4, nan],
    ])
    with warnings.catch_warnings():
        warnings.simplefilter('error')  # no "mean of empty slice" warning
        per_class, mean = aggregate_dice(per_unit)
        per_class_bg, mean_bg = aggregate_dice(
            per_unit, include_background=True)
    np.testing.assert_allclose(per_class, [0.5, 0.75, 0.3, nan])
    assert mean == pytest.approx((0.75 + 0.3) / 2)
    np.testing.assert_allclose(per_class_bg, per_class)
    assert mean_bg == pytest.approx((0.5 + 0.75 + 0.3) / 3)


def test_aggregate_dice_nothing_defined():
    per_class, mean = aggregate_dice(np.array([[1.0, np.nan, np.nan]]))
    assert math.isnan(mean)
    assert per_class[0] == 1.0
    with pytest.raises(ValueError):
        aggregate_dice(np.zeros(3))


def test_hd95_single_voxels_anisotropic():
    # offsets (1, 4, 0) voxels along (slice, row, col), spacing (3, .5, .8)
    pred = np.zeros((3, 6, 4), dtype=bool)
    gt = np.zeros_like(pred)
    pred[0, 0, 2] = True
    gt[1, 4, 2] = True
    assert hd95_binary(pred, gt, (3.0, 0.5, 0.8)) == pytest.approx(
        math.sqrt(3.0**2 + (4 * 0.5)**2))


def test_hd95_parallel_plates():
    # two 1-voxel-thick 3x3 plates 3 slices apart: every voxel is a surface
    # voxel whose nearest counterpart lies straight across -> 3 * 2.5 mm
    pred = np.zeros((7, 5, 5), dtype=bool)
    gt = np.zeros_like(pred)
    gt[1, 1:4, 1:4] = True
    pred[4, 1:4, 1:4] = True
    assert hd95_binary(pred, gt, (2.5, 1.0, 1.0)) == pytest.approx(7.5)
    assert hd95_binary(gt, gt, (2.5, 1.0, 1.0)) == 0.0
    assert math.isnan(hd95_binary(pred, np.zeros_like(gt), (1, 1, 1)))


def _brute_force_hd95(a, b, spacing):
    """Reference: explicit surfaces and all pairwise distances."""

    def surface(mask):
        points = []
        for idx in zip(*np.nonzero(mask)):
            for axis, step in itertools.product(range(mask.ndim), (-1, 1)):
                nb = list(idx)
                nb[axis] += step
                if not 0 <= nb[axis] < mask.shape[axis] or not mask[tuple(nb)]:
                    points.append(idx)
                    break
        return np.array(points, dtype=float) * np.asarray(spacing)

    sa, sb = surface(a), surface(b)
    d = np.linalg.norm(sa[:, None] - sb[None], axis=-1)
    return np.percentile(np.concatenate([d.min(1), d.min(0)]), 95)


def test_hd95_matches_brute_force_with_border_objects():
    rng = np.random.default_rng(1)
    for _ in range(3):
        a = rng.random((5, 8, 7)) > 0.6
        b = np.zeros_like(a)
        b[1:5, 0:6, 2:7] = True  # touches the array border
        spacing = (2.0, 0.7, 0.4)
        assert hd95_binary(a, b, spacing) == pytest.approx(
            _brute_force_hd95(a, b, spacing))


def test_hd95_per_class():
    pred = np.zeros((3, 6, 4), dtype=np.uint8)
    gt = np.zeros_like(pred)
    pred[0, 0, 2] = 1
    gt[1, 4, 2] = 1
    gt[2, 2, 2] = 2  # class 2 only in gt -> nan
    gt[2, 5, 3] = 255
    pred[2, 5, 3] = 3  # class 3 only under an ignored voxel -> nan
    hd = hd95_per_class(pred, gt, 4, (3.0, 0.5, 0.8))
    assert hd[1] == pytest.approx(math.sqrt(13.0))
    assert math.isnan(hd[2]) and math.isnan(hd[3])
    assert hd[0] >= 0
    only_fg = hd95_per_class(pred, gt, 4, (3.0, 0.5, 0.8), classes=[1])
    assert math.isnan(only_fg[0]) and only_fg[1] == pytest.approx(hd[1])
    with pytest.raises(ValueError, match='spacing'):
        hd95_per_class(pred, gt, 4, (1.0, 1.0))


def test_foreground_dice_by_hand():
    gt = np.array([[[0, 1, 1, 2]]])
    pred = np.array([[[0, 1, 2, 2]]])
    # class 1: 2*1/(1+2) = 2/3; class 2: 2*1/(2+1) = 2/3
    assert foreground_dice(pred, gt, 3) == pytest.approx(2 / 3)
    assert np.isnan(foreground_dice(pred, np.zeros_like(gt), 3))
