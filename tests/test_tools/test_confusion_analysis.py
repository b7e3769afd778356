"""tools/analysis/confusion_analysis.py: error split on hand-made matrices."""
import importlib.util
from pathlib import Path

import numpy as np
import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
spec = importlib.util.spec_from_file_location(
    'confusion_analysis', REPO_ROOT / 'tools/analysis/confusion_analysis.py')
tool = importlib.util.module_from_spec(spec)
spec.loader.exec_module(tool)


def test_error_summary_and_offsets():
    # rows: ground truth bg, A, B; columns: prediction
    conf = np.array([[90, 4, 1],
                     [2, 6, 2],
                     [3, 1, 6]])
    s = tool.error_summary(conf)
    assert s['fg_pixels'] == 20
    assert s['correct'] == pytest.approx(12 / 20)
    assert s['wrong_unit'] == pytest.approx(3 / 20)
    assert s['missed'] == pytest.approx(5 / 20)
    assert s['invented'] == pytest.approx(5 / 20)
    hist = tool.offset_histogram(conf)
    assert hist == pytest.approx({-1: 1 / 15, 0: 12 / 15, 1: 2 / 15})


def test_error_summary_without_foreground_raises():
    with pytest.raises(ValueError, match='no foreground'):
        tool.error_summary(np.array([[5, 0], [0, 0]]))


def test_volume_mdice_stacks_slices_per_case():
    gt = np.array([[0, 1], [1, 1]])
    cases = {'a': {1: (gt, gt), 0: (np.zeros_like(gt), gt)}}
    # class 1: 3 of 6 voxels found -> 2*3 / (3 + 6)
    assert tool.volume_mdice(cases, 2) == pytest.approx(100 * 6 / 9)
