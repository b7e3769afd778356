"""AnatomicalOrderRefiner: the dynamic programme and hand-made slices."""
import numpy as np
import pytest
import torch

from cps4.datasets.spine_classes import (MRSPINESEG_CLASSES, SPINE_ORDER,
                                         anatomical_order)
from cps4.models import AnatomicalOrderRefiner

CLASSES = ['background', 'L1', 'L2', 'L3']


def test_spine_order_and_class_lists():
    assert SPINE_ORDER[:3] == ('C1', 'C1/C2', 'C2')
    assert SPINE_ORDER[-3:] == ('L5', 'L5/S', 'S')
    # MRSpineSeg: T9 (value 10) on top, S (value 1) at the bottom, the
    # discs between their neighbours
    order = [MRSPINESEG_CLASSES[i]
             for i in anatomical_order(MRSPINESEG_CLASSES)]
    assert order[:3] == ['T9', 'T9/T10', 'T10'] and order[-2:] == ['L5/S',
                                                                  'S']
    assert len(order) == 19
    assert anatomical_order(['background', 'L5', 'L1', 'cord']) == [2, 1]


def test_best_levels_by_hand():
    # three components, three levels; unconstrained argmax 1, 1, 0 breaks
    # the order. Best in order: 0, 1, 2 (-1 - 1 - 4 = -6) beats skipping
    # the last (-1 - 1 - 10 = -12) and 0, 1 with the last at 2 anyway.
    scores = np.array([[-1.0, -0.5, -9.0],
                       [-3.0, -1.0, -8.0],
                       [-2.0, -6.0, -4.0]])
    skips = np.full(3, -10.0)
    assert AnatomicalOrderRefiner.best_levels(scores, skips) == [0, 1, 2]
    # a component that fits nowhere in order is skipped
    scores[2] = [-2.0, -20.0, -30.0]
    assert AnatomicalOrderRefiner.best_levels(scores, skips) == [0, 1, -1]
    # more components than levels: the worst fit is skipped
    four = np.array([[-1.0, -9, -9], [-9, -1.0, -9], [-9, -2.0, -3.0],
                     [-9, -9, -1.0]])
    assert AnatomicalOrderRefiner.best_levels(four, np.full(4, -5.0)) == [
        0, 1, -1, 2]


def _slice(bodies, size=(40, 12)):
    """Probabilities (1, 4, H, W): each body is (rows, probs over L1-L3);
    background elsewhere."""
    probs = torch.zeros(1, 4, *size)
    probs[:, 0] = 1.0
    for rows, p in bodies:
        probs[0, :, rows, 2:10] = torch.tensor([0.0] + p).view(4, 1, 1)
    return probs


def test_duplicate_level_is_resolved_by_its_second_choice():
    # two bodies both called L2 (rows 2-9 and 14-21), the upper one with
    # L1 as its second choice; a third body L3 below
    probs = _slice([(slice(2, 10), [0.35, 0.6, 0.05]),
                    (slice(14, 22), [0.05, 0.9, 0.05]),
                    (slice(26, 34), [0.05, 0.05, 0.9])])
    refiner = AnatomicalOrderRefiner(classes=CLASSES, min_pixels=4)
    labels, weight = refiner(probs)
    assert labels[0, 5, 5] == 1 and labels[0, 18, 5] == 2
    assert labels[0, 30, 5] == 3 and labels[0, 0, 0] == 0
    assert bool((weight == 1).all())
    # the arg-max alone keeps the duplicate
    assert probs.argmax(1)[0, 5, 5] == 2


def test_swapped_levels_are_put_in_order_and_misfits_skipped():
    probs = _slice([(slice(2, 10), [0.1, 0.3, 0.6]),    # says L3 on top
                    (slice(14, 22), [0.4, 0.5, 0.1]),
                    (slice(26, 34), [0.2, 0.2, 0.6])])
    labels, weight = AnatomicalOrderRefiner(classes=CLASSES,
                                            min_pixels=4)(probs)
    assert [int(labels[0, r, 5]) for r in (5, 18, 30)] == [1, 2, 3]
    # a fourth unit cannot fit below L3: skipped, weight 0, label kept
    probs = _slice([(slice(2, 8), [0.9, 0.05, 0.05]),
                    (slice(10, 16), [0.05, 0.9, 0.05]),
                    (slice(18, 24), [0.05, 0.05, 0.9]),
                    (slice(28, 34), [0.9995, 0.0004, 0.0001])])
    labels, weight = AnatomicalOrderRefiner(classes=CLASSES,
                                            min_pixels=4)(probs)
    assert [int(labels[0, r, 5]) for r in (4, 12, 20, 30)] == [1, 2, 3, 1]
    assert float(weight[0, 30, 5]) == 0 and float(weight[0, 20, 5]) == 1


def test_small_components_background_and_columns_axis():
    probs = _slice([(slice(2, 10), [0.1, 0.3, 0.6]),
                    (slice(14, 22), [0.4, 0.5, 0.1])])
    refiner = AnatomicalOrderRefiner(classes=CLASSES, min_pixels=100)
    labels, weight = refiner(probs)  # both bodies (64 px) are too small
    assert torch.equal(labels, probs.argmax(1))
    assert bool((weight == 1).all())
    # superior to the left: the transposed slice gives the same levels
    refiner = AnatomicalOrderRefiner(classes=CLASSES, axis=1, min_pixels=4)
    labels, _ = refiner(probs.transpose(2, 3))
    assert int(labels[0, 5, 5]) == 1 and int(labels[0, 5, 18]) == 2


def test_order_from_names_and_errors():
    refiner = AnatomicalOrderRefiner(order=['L3', 'L2', 'L1'],
                                     classes=CLASSES)
    assert refiner.order == [3, 2, 1]
    with pytest.raises(ValueError, match=r"\['L9'\] are not classes"):
        AnatomicalOrderRefiner(order=['L9'], classes=CLASSES)
    with pytest.raises(ValueError, match='no anatomical order'):
        AnatomicalOrderRefiner(classes=['background', 'disc', 'vertebra'])
    with pytest.raises(RuntimeError, match='set_classes'):
        AnatomicalOrderRefiner()(torch.rand(1, 4, 8, 8))
