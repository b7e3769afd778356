import csv
import json
import math
import pickle

import numpy as np
import pytest
import torch
from mmengine.evaluator import Evaluator
from mmengine.registry import init_default_scope
from mmengine.structures import PixelData

from cps4.evaluation.metrics import volume_dice_metric
from cps4.evaluation.metrics.volume_dice_metric import VolumeDiceMetric
from mmseg.structures import SegDataSample

CLASSES = ('background', 'L1', 'L2')
SPACING = (0.5, 0.8, 3.0)  # row, column, between slices (mm)

# Two volumes x three 2x4 slices.
#   case A  s0: L1 G=4 P=4 I=4 | s1: L1 G=2 P=0 | s2: L2 G=2 P=2 I=1
#   case B  s0: L1 G=2 P=2 I=2 | s1: L1 G=0 P=2 | s2: L2 predicted only
#                                                  under an ignored pixel
# Volume Dice:  A: L1 = 2*4/(4+6) = 0.8, L2 = 2*1/(2+2) = 0.5
#               B: L1 = 2*2/(4+2) = 2/3, L2 undefined (ignored) -> left out
#   -> Dice.L1 = (0.8 + 2/3) / 2 = 73.33, Dice.L2 = 50 (not (0.5 + 1) / 2)
#   -> mDice = (73.33.. + 50) / 2 = 61.67
# Slice Dice: L1 on A0, A1, B0, B1 = 1, 0, 1, 0 -> 50; L2 on A2 = 0.5 -> 50
#   -> slice_mDice = 50, different from the volume-level values.
# Background volume Dice: A: I=15 P=18 G=16 -> 30/34; B: I=19 P=19 G=21
#   -> 38/40; mean 0.91618.
SLICES = {
    ('A', 0): ([[1, 1, 0, 0], [1, 1, 0, 0]], [[1, 1, 0, 0], [1, 1, 0, 0]]),
    ('A', 1): ([[0, 0, 0, 0], [0, 0, 0, 0]], [[1, 1, 0, 0], [0, 0, 0, 0]]),
    ('A', 2): ([[0, 0, 0, 2], [0, 0, 0, 2]], [[0, 0, 2, 2], [0, 0, 0, 0]]),
    ('B', 0): ([[0, 0, 0, 0], [0, 1, 1, 0]], [[0, 0, 0, 0], [0, 1, 1, 0]]),
    ('B', 1): ([[1, 1, 0, 0], [0, 0, 0, 0]], [[0, 0, 0, 0], [0, 0, 0, 0]]),
    ('B', 2): ([[0, 0, 0, 2], [0, 0, 0, 0]], [[0, 0, 0, 255], [0, 0, 0, 0]]),
}
SHUFFLED = [('B', 1), ('A', 2), ('A', 0), ('B', 2), ('B', 0), ('A', 1)]

VOL_L1 = (0.8 + 2 / 3) / 2
VOL_L2 = 0.5
VOL_BG = (30 / 34 + 38 / 40) / 2


def make_sample(case_id, slice_idx, pred, gt, n_slices=3, spacing=SPACING):
    """A data sample dict shaped like what IoUMetric.process receives."""
    return {
        'case_id': case_id,
        'slice_idx': slice_idx,
        'n_slices': n_slices,
        'spacing': spacing,
        'img_path': f'{case_id}_{slice_idx}.png',
        'pred_sem_seg': {
            'data': torch.tensor(pred, dtype=torch.long)[None]
        },
        'gt_sem_seg': {
            'data': torch.tensor(gt, dtype=torch.uint8)[None]
        },
    }


def dice_samples(keys=SHUFFLED):
    return [make_sample(case, idx, *SLICES[(case, idx)]) for case, idx in keys]


def run_metric(metric, samples, batch_size=4):
    for start in range(0, len(samples), batch_size):
        metric.process({}, samples[start:start + batch_size])
    return metric.evaluate(len(samples))


def test_volume_and_slice_dice_hand_computed():
    metric = VolumeDiceMetric()
    metric.dataset_meta = dict(classes=CLASSES)
    res = run_metric(metric, dice_samples())

    assert list(res) == [
        'mDice', 'slice_mDice', 'Dice.L1', 'Dice.L2', 'slice_Dice.L1',
        'slice_Dice.L2'
    ]
    assert res['Dice.L1'] == pytest.approx(100 * VOL_L1, abs=5e-3)  # 73.33
    assert res['Dice.L2'] == pytest.approx(50.0)
    assert res['mDice'] == pytest.approx(
        100 * (VOL_L1 + VOL_L2) / 2, abs=5e-3)  # 61.67
    assert res['slice_Dice.L1'] == pytest.approx(50.0)
    assert res['slice_Dice.L2'] == pytest.approx(50.0)
    assert res['slice_mDice'] == pytest.approx(50.0)
    # the volume reassembly changes the answer
    assert res['Dice.L1'] != res['slice_Dice.L1']
    assert res['mDice'] != res['slice_mDice']

    cases = metric.last_case_results
    assert [c['case_id'] for c in cases] == ['A', 'B']
    assert cases[0]['n_slices'] == 3 and cases[0]['n_evaluated_slices'] == 3
    assert cases[0]['Dice.L1'] == pytest.approx(80.0)
    assert cases[0]['Dice.L2'] == pytest.approx(50.0)
    assert cases[1]['Dice.L1'] == pytest.approx(200 / 3)
    assert math.isnan(cases[1]['Dice.L2'])
    assert cases[1]['Dice.background'] == pytest.approx(95.0)


def test_slice_order_does_not_matter():
    ordered = sorted(SHUFFLED)
    metric_a, metric_b = VolumeDiceMetric(), VolumeDiceMetric()
    metric_a.dataset_meta = metric_b.dataset_meta = dict(classes=CLASSES)
    assert run_metric(metric_a, dice_samples(ordered)) == run_metric(
        metric_b, dice_samples(), batch_size=1)


def test_include_background():
    metric = VolumeDiceMetric(include_background=True)
    metric.dataset_meta = dict(classes=CLASSES)
    res = run_metric(metric, dice_samples())
    assert res['Dice.background'] == pytest.approx(100 * VOL_BG, abs=5e-3)
    assert res['mDice'] == pytest.approx(
        100 * (VOL_BG + VOL_L1 + VOL_L2) / 3, abs=5e-3)  # 71.65


def test_no_dataset_meta_uses_class_indices():
    metric = VolumeDiceMetric()
    res = run_metric(metric, dice_samples())
    assert res['Dice.1'] == pytest.approx(100 * VOL_L1, abs=5e-3)
    assert res['Dice.2'] == pytest.approx(50.0)
    assert res['slice_mDice'] == pytest.approx(50.0)


def test_results_are_compact_and_picklable():
    metric = VolumeDiceMetric(hd95=True)
    metric.dataset_meta = dict(classes=CLASSES)
    metric.process({}, dice_samples())
    assert all(r['pred'].dtype == np.uint8 and r['gt'].dtype == np.uint8
               for r in metric.results)
    assert not any(
        isinstance(v, torch.Tensor) for r in metric.results
        for v in r.values())
    # what a rank would send through BaseMetric's result collection
    results = pickle.loads(pickle.dumps(metric.results))
    res = metric.compute_metrics(results)
    assert res['Dice.L1'] == pytest.approx(100 * VOL_L1, abs=5e-3)
    # without HD95 no label map is kept at all
    light = VolumeDiceMetric()
    light.dataset_meta = dict(classes=CLASSES)
    light.process({}, dice_samples())
    assert set(light.results[0]) == {
        'case_id', 'slice_idx', 'n_slices', 'spacing', 'counts'
    }


def hd95_samples(indices=(2, 0, 3, 1)):
    """One case, 4 slices of 4x4, spacing (row .5, col .8, slice 3) mm.

    L1: gt 2x2 block on slice 1 (rows 1-2), pred 2x2 block on slice 3 shifted
    one row (rows 2-3). Every voxel is a surface voxel; 4 of the 8 surface
    distances are 2*3 = 6 mm (straight across), the other 4 are
    sqrt(6**2 + 0.5**2) mm, which is therefore the 95th percentile.
    L2: predicted on slice 0 only -> HD95 missing.
    """
    preds = np.zeros((4, 4, 4), dtype=np.int64)
    gts = np.zeros((4, 4, 4), dtype=np.int64)
    gts[1, 1:3, 1:3] = 1
    preds[3, 2:4, 1:3] = 1
    preds[0, 0, 0] = 2
    return [make_sample('C', i, preds[i], gts[i], n_slices=4) for i in indices]


def test_hd95_known_geometry():
    metric = VolumeDiceMetric(hd95=True)
    metric.dataset_meta = dict(classes=CLASSES)
    res = run_metric(metric, hd95_samples(), batch_size=3)
    expected = math.sqrt(6.0**2 + 0.5**2)  # 6.02
    assert res['HD95.L1'] == pytest.approx(expected, abs=5e-3)
    assert math.isnan(res['HD95.L2'])
    assert res['mHD95'] == pytest.approx(expected, abs=5e-3)
    assert res['hd95_missing'] == 1
    assert res['Dice.L1'] == 0.0 and res['Dice.L2'] == 0.0
    assert list(res)[-4:] == ['mHD95', 'HD95.L1', 'HD95.L2', 'hd95_missing']
    case = metric.last_case_results[0]
    assert case['HD95.L1'] == pytest.approx(expected)
    assert 'HD95.background' not in case


def test_partial_case_warns_once_and_stacks_present_slices(monkeypatch):
    messages = []
    original = volume_dice_metric.print_log

    def record(msg, logger=None, level=20):
        messages.append((msg, level))
        original(msg, logger=logger, level=level)

    monkeypatch.setattr(volume_dice_metric, 'print_log', record)
    metric = VolumeDiceMetric(hd95=True)
    metric.dataset_meta = dict(classes=CLASSES)
    # slice 2 missing: slices 1 and 3 become neighbours -> 3 mm apart
    res = run_metric(metric, hd95_samples(indices=(3, 0, 1)))
    assert res['HD95.L1'] == pytest.approx(
        math.sqrt(3.0**2 + 0.5**2), abs=5e-3)
    warnings = [m for m, level in messages if level >= 30]
    assert len(warnings) == 1 and 'part of their slices' in warnings[0]
    assert metric.last_case_results[0]['n_evaluated_slices'] == 3


def test_missing_metainfo_raises_clear_key_error():
    sample = dice_samples()[0]
    del sample['spacing']
    metric = VolumeDiceMetric()
    with pytest.raises(KeyError, match='PackSegInputs'):
        metric.process({}, [sample])


def test_duplicate_slices_rejected():
    metric = VolumeDiceMetric()
    metric.dataset_meta = dict(classes=CLASSES)
    samples = dice_samples() + dice_samples()[:1]
    metric.process({}, samples)
    with pytest.raises(ValueError, match='duplicated'):
        metric.compute_metrics(metric.results)


def test_output_dir_tables(tmp_path):
    metric = VolumeDiceMetric(output_dir=str(tmp_path))
    metric.dataset_meta = dict(classes=CLASSES)
    run_metric(metric, dice_samples())
    with open(tmp_path / 'volume_metrics_per_case.csv') as f:
        rows = list(csv.DictReader(f))
    assert [r['case_id'] for r in rows] == ['A', 'B']
    assert float(rows[0]['Dice.L1']) == pytest.approx(80.0)
    assert rows[1]['Dice.L2'] == ''
    with open(tmp_path / 'volume_metrics_per_case.json') as f:
        cases = json.load(f)
    assert cases[1]['Dice.L2'] is None
    assert cases[1]['Dice.L1'] == pytest.approx(200 / 3)


def test_through_mmengine_evaluator():
    init_default_scope('mmseg')
    evaluator = Evaluator(
        dict(type='VolumeDiceMetric', hd95=True, prefix='vol'))
    evaluator.dataset_meta = dict(classes=CLASSES)
    samples = []
    for case, idx in SHUFFLED:
        pred, gt = SLICES[(case, idx)]
        sample = SegDataSample(
            metainfo=dict(
                case_id=case, slice_idx=idx, n_slices=3, spacing=SPACING))
        sample.pred_sem_seg = PixelData(data=torch.tensor(pred)[None])
        sample.gt_sem_seg = PixelData(data=torch.tensor(gt)[None])
        samples.append(sample)
    evaluator.process(samples[:3])
    evaluator.process(samples[3:])
    res = evaluator.evaluate(len(samples))
    assert res['vol/Dice.L1'] == pytest.approx(100 * VOL_L1, abs=5e-3)
    assert res['vol/mDice'] == pytest.approx(
        100 * (VOL_L1 + VOL_L2) / 2, abs=5e-3)
    assert res['vol/slice_mDice'] == pytest.approx(50.0)
    assert 'vol/mHD95' in res and 'vol/hd95_missing' in res


def test_refiner_rewrites_predictions_from_their_logits():
    """One slice, two bodies: both predicted L2, the upper one with L1 as
    its second choice. The arg-max scores L1 0 and L2 2*8/(8+16); with the
    order refiner the upper body becomes L1: both Dice 1."""
    gt = np.zeros((12, 4), dtype=np.uint8)
    gt[1:5], gt[7:11] = 1, 2
    logits = torch.zeros(3, 12, 4)
    logits[0] = 5.0  # background elsewhere
    logits[:, 1:5] = torch.tensor([0.0, 2.0, 2.5]).view(3, 1, 1)
    logits[:, 7:11] = torch.tensor([0.0, 0.0, 4.0]).view(3, 1, 1)
    sample = make_sample('A', 0, logits.argmax(0).tolist(), gt.tolist(),
                         n_slices=1)
    sample['seg_logits'] = {'data': logits}
    plain = VolumeDiceMetric()
    plain.dataset_meta = dict(classes=CLASSES)
    res = run_metric(plain, [sample])
    assert res['Dice.L1'] == 0
    assert res['Dice.L2'] == pytest.approx(100 * 16 / 24, abs=0.01)
    init_default_scope('mmseg')
    ordered = VolumeDiceMetric(
        refiner=dict(type='AnatomicalOrderRefiner', min_pixels=4))
    ordered.dataset_meta = dict(classes=CLASSES)
    res = run_metric(ordered, [sample])
    assert res['Dice.L1'] == pytest.approx(100.0)
    assert res['Dice.L2'] == pytest.approx(100.0)
    del sample['seg_logits']
    with pytest.raises(KeyError, match='seg_logits'):
        ordered.process({}, [sample])
