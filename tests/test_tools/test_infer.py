"""tools/infer.py and cps4.apis: volumes in, masks with the input geometry out."""
import json
import shutil
import subprocess
import sys
from pathlib import Path

import mmcv
import nibabel as nib
import numpy as np
import pytest
from mmengine.config import Config
from mmengine.runner import Runner

from cps4.apis import (build_test_dataset, case_name, find_volumes,
                       inference_dataset, inference_volume, init_model,
                       output_paths, save_prediction)
from cps4.datasets.meta import read_meta
from cps4.evaluation.functional import dice_per_class
from cps4.utils.fileio import DatasetFormatError

REPO_ROOT = Path(__file__).resolve().parents[2]
@pytest.fixture(scope='module')
def trained(tiny_sup_config, tmp_path_factory):
    """A UNet trained for 30 iterations: (config, checkpoint, work dir)."""
    work = tmp_path_factory.mktemp('infer_model')
    cfg_path = tiny_sup_config(work, 30, ckpt=30)
    cfg = Config.fromfile(cfg_path)
    cfg.work_dir = str(work)
    Runner.from_cfg(cfg).train()
    return cfg_path, work / 'iter_30.pth', work


def raw_root(tiny_spine_root: Path) -> Path:
    return tiny_spine_root.parent / 'raw'


def test_case_names_and_output_paths(tmp_path):
    assert case_name('a/spine_003_0000.nii.gz') == 'spine_003'
    assert case_name('b/scan.mha') == 'scan'
    files = [Path('x/spine_001_0000.nii.gz'), Path('x/p2.mha')]
    assert output_paths(files, tmp_path / 'out') == [
        tmp_path / 'out/spine_001.nii.gz', tmp_path / 'out/p2.mha']
    assert output_paths(files[:1], tmp_path / 'm.nii.gz') == [
        tmp_path / 'm.nii.gz']
    (tmp_path / 'in').mkdir()
    (tmp_path / 'in/a_0000.nii.gz').write_bytes(b'')
    (tmp_path / 'in/a_0001.nii.gz').write_bytes(b'')
    with pytest.raises(DatasetFormatError, match='extra input channels'):
        find_volumes(tmp_path / 'in')
    (tmp_path / 'empty').mkdir()
    with pytest.raises(DatasetFormatError, match='no volume files'):
        find_volumes(tmp_path / 'empty')


def test_mask_keeps_geometry_and_matches_test_tool_dice(
        trained, tiny_spine_root, tmp_path):
    cfg_path, ckpt, work = trained
    # per-case Dice of the test cases as tools/test.py reports them
    out = tmp_path / 'test_out'
    proc = subprocess.run(
        [sys.executable, str(REPO_ROOT / 'tools/test.py'), str(cfg_path),
         str(ckpt), '--work-dir', str(tmp_path / 'test_work'), '--out',
         str(out), '--show-dir', str(tmp_path / 'show')],
        capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    per_case = json.loads((out / 'volume_metrics_per_case.json').read_text())
    case = per_case[0]['case_id']
    meta = read_meta(tiny_spine_root)
    classes = meta['classes']
    # --show-dir: image | ground truth | prediction for every test slice
    shown = sorted((tmp_path / 'show').rglob('*.png'))
    n_test = sum(meta['cases'][c['case_id']]['n_slices'] for c in per_case)
    assert len(shown) == n_test
    picture = mmcv.imread(str(shown[0]))
    width = mmcv.imread(str(sorted((tiny_spine_root / 'images')
                                   .iterdir())[0])).shape[1]
    assert picture.shape[1] == 3 * width, picture.shape

    model = init_model(str(cfg_path), str(ckpt))
    assert model.dataset_meta['label_values'] == meta['label_values']
    src = raw_root(tiny_spine_root) / 'imagesTr' / f'{case}_0000.nii.gz'
    pred = inference_volume(model, src, batch_size=3, progress=False)
    mask_file = tmp_path / 'pred' / f'{case}.nii.gz'
    save_prediction(pred, mask_file)

    ref, mask = nib.load(str(src)), nib.load(str(mask_file))
    assert mask.shape == ref.shape
    np.testing.assert_array_equal(mask.affine, ref.affine)
    assert mask.header.get_zooms() == ref.header.get_zooms()
    assert int(mask.header['sform_code']) == int(ref.header['sform_code'])
    values = np.unique(np.asanyarray(mask.dataobj))
    assert set(values.tolist()) <= set(meta['label_values'])
    assert not list((tmp_path / 'pred').glob('.*'))  # no temporary left

    # tools/test.py --out wrote the same mask for this case
    dumped = nib.load(str(out / f'{case}.nii.gz'))
    np.testing.assert_array_equal(np.asanyarray(dumped.dataobj),
                                  np.asanyarray(mask.dataobj))
    np.testing.assert_allclose(dumped.affine, ref.affine)

    gt_values = np.asanyarray(
        nib.load(str(raw_root(tiny_spine_root) / 'labelsTr' /
                     f'{case}.nii.gz')).dataobj)
    lut = {v: k for k, v in enumerate(meta['label_values'])}
    gt = np.vectorize(lut.get)(gt_values)
    dice = dice_per_class(pred.labels, gt, len(classes))
    for k, name in enumerate(classes[1:], 1):
        expected = per_case[0][f'Dice.{name}']
        if expected is None:
            assert np.isnan(dice[k])
        else:
            assert dice[k] * 100 == pytest.approx(expected, abs=1e-6), name


def test_folder_of_two_volumes_gives_two_masks_and_probs(
        trained, tiny_spine_root, tmp_path):
    cfg_path, ckpt, _ = trained
    src = tmp_path / 'imagesTs'
    src.mkdir()
    for f in sorted((raw_root(tiny_spine_root) / 'imagesTr').iterdir())[:2]:
        shutil.copy(f, src / f.name)
    out = tmp_path / 'masks'
    proc = subprocess.run(
        [sys.executable, str(REPO_ROOT / 'tools/infer.py'), str(cfg_path),
         str(ckpt), str(src), str(out), '--save-probs', '--batch-size', '4'],
        capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    masks = sorted(p.name for p in out.glob('*.nii.gz')
                   if '_probs' not in p.name)
    assert masks == sorted(case_name(p) + '.nii.gz' for p in src.iterdir())
    mask = nib.load(str(out / masks[0]))
    probs = nib.load(str(out / masks[0].replace('.nii.gz', '_probs.nii.gz')))
    k = len(read_meta(tiny_spine_root)['classes'])
    assert probs.shape == mask.shape + (k, )
    p = np.asanyarray(probs.dataobj)
    np.testing.assert_allclose(p.sum(-1), 1.0, atol=1e-4)
    # the mask is the arg-max of the probabilities (as class indices)
    values = read_meta(tiny_spine_root)['label_values']
    np.testing.assert_array_equal(
        np.asarray(values)[p.argmax(-1)], np.asanyarray(mask.dataobj))


def test_corrupt_input_is_refused_and_writes_nothing(trained, tiny_spine_root,
                                                     tmp_path):
    cfg_path, ckpt, _ = trained
    good = sorted((raw_root(tiny_spine_root) / 'imagesTr').iterdir())[0]
    src = tmp_path / 'in'
    src.mkdir()
    data = good.read_bytes()
    (src / 'broken_0000.nii.gz').write_bytes(data[:len(data) // 2])
    out = tmp_path / 'out'
    out.mkdir()
    keep = out / 'broken.nii.gz'
    keep.write_bytes(b'an earlier mask')  # must survive a failed run
    proc = subprocess.run(
        [sys.executable, str(REPO_ROOT / 'tools/infer.py'), str(cfg_path),
         str(ckpt), str(src), str(out), '--overwrite'],
        capture_output=True, text=True, timeout=600)
    log = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert 'broken_0000.nii.gz: cannot read the file' in log, log[-2000:]
    assert 'Traceback' not in log
    assert sorted(p.name for p in out.iterdir()) == ['broken.nii.gz']
    assert keep.read_bytes() == b'an earlier mask'


def test_missing_checkpoint_is_named(trained, tmp_path):
    cfg_path, _, _ = trained
    with pytest.raises(FileNotFoundError, match='nope.pth'):
        init_model(str(cfg_path), str(tmp_path / 'nope.pth'))
    bad = tmp_path / 'bad.pth'
    bad.write_bytes(b'not a checkpoint')
    with pytest.raises(RuntimeError, match='bad.pth: cannot load'):
        init_model(str(cfg_path), str(bad))


def test_mha_output_keeps_itk_geometry(trained, tiny_spine_root, tmp_path):
    sitk = pytest.importorskip('SimpleITK')
    cfg_path, ckpt, _ = trained
    good = sorted((raw_root(tiny_spine_root) / 'imagesTr').iterdir())[0]
    img = sitk.ReadImage(str(good))
    img.SetOrigin((3.0, -2.0, 7.5))
    src = tmp_path / 'scan.mha'
    sitk.WriteImage(img, str(src))
    model = init_model(str(cfg_path), str(ckpt))
    pred = inference_volume(model, src, progress=False)
    save_prediction(pred, tmp_path / 'scan_mask.mha')
    out = sitk.ReadImage(str(tmp_path / 'scan_mask.mha'))
    assert out.GetSize() == img.GetSize()
    assert out.GetOrigin() == img.GetOrigin()
    assert out.GetSpacing() == img.GetSpacing()
    assert out.GetDirection() == img.GetDirection()


def test_slices_go_through_the_network_in_batches(trained, tiny_spine_root):
    """The network sees ceil(n / batch_size) batches of at most batch_size
    slices, whatever the volume size (the memory bound of inference)."""
    cfg_path, ckpt, _ = trained
    model = init_model(str(cfg_path), str(ckpt))
    sizes = []
    real = model.test_step

    def counting(data):
        sizes.append(len(data['inputs']))
        return real(data)

    model.test_step = counting
    src = sorted((raw_root(tiny_spine_root) / 'imagesTr').iterdir())[0]
    pred = inference_volume(model, src, batch_size=3, progress=False)
    n = pred.labels.shape[pred.slice_axis]
    assert sum(sizes) == n
    assert max(sizes) == 3 and len(sizes) == -(-n // 3)


def test_inference_dataset_batches_in_index_order(trained):
    cfg_path, ckpt, _ = trained
    model = init_model(str(cfg_path), str(ckpt))
    dataset = build_test_dataset(model.cfg, subset='val')
    assert dataset.subsets == ['val']
    order = [3, 0, 2]
    out = list(inference_dataset(model, dataset, order, batch_size=2,
                                 progress=False))
    assert [len(samples) for _, samples in out] == [2, 1]
    samples = [s for _, batch in out for s in batch]
    infos = [dataset.get_data_info(i) for i in order]
    assert [s.metainfo['slice_idx'] for s in samples] == [
        d['slice_idx'] for d in infos]
    # batching changes nothing: one slice at a time gives the same labels
    single = [s for _, batch in inference_dataset(
        model, dataset, order, batch_size=1, progress=False) for s in batch]
    for a, b in zip(samples, single):
        assert 'gt_sem_seg' in a
        assert np.array_equal(a.pred_sem_seg.data.numpy(),
                              b.pred_sem_seg.data.numpy())
    with pytest.raises(ValueError, match='batch_size'):
        next(inference_dataset(model, dataset, batch_size=0))
