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

from axis_orders import restore

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
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-3000:]
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


def test_any_axis_order_gives_the_same_mask_on_the_same_voxels(
        trained, tiny_spine_root, tmp_path):
    """A volume stored with its axes flipped or permuted (header adjusted,
    same world geometry) or re-saved as .mha is segmented exactly like the
    stored training case, and its mask is written in its own array order
    with its own affine."""
    sitk = pytest.importorskip('SimpleITK')
    cfg_path, ckpt, _ = trained
    model = init_model(str(cfg_path), str(ckpt))
    assert model.dataset_meta['orientation'] == read_meta(
        tiny_spine_root)['orientation']
    good = sorted((raw_root(tiny_spine_root) / 'imagesTr').iterdir())[0]
    pred = inference_volume(model, good, with_probs=True, progress=False)
    reference, ref_probs = pred.labels, pred.probs
    # the probabilities vary over the volume: a flipped slice would show
    assert ref_probs[..., 0].std() > 0.01
    img = nib.load(str(good))
    data = np.asanyarray(img.dataobj)
    src = tmp_path / 'in'
    src.mkdir()
    orders = {
        'flip0': ((0, 1, 2), (True, False, False)),
        'flip1': ((0, 1, 2), (False, True, False)),
        'flip2': ((0, 1, 2), (False, False, True)),
        'swap01': ((1, 0, 2), (False, False, False)),
        'roll': ((2, 0, 1), (True, False, True)),
    }
    for name, (perm, flips) in orders.items():
        stored, affine = restore(data, img.affine, perm, flips)
        nib.Nifti1Image(stored, affine).to_filename(
            str(src / f'{name}.nii.gz'))
    sitk.WriteImage(sitk.ReadImage(str(good)), str(src / 'as_mha.mha'))
    out = tmp_path / 'out'
    proc = subprocess.run(
        [sys.executable, str(REPO_ROOT / 'tools/infer.py'), str(cfg_path),
         str(ckpt), str(src), str(out), '--save-probs'],
        capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    lut = np.asarray(read_meta(tiny_spine_root)['label_values'])
    for name, (perm, flips) in orders.items():
        mask = nib.load(str(out / f'{name}.nii.gz'))
        expected, affine = restore(lut[reference], img.affine, perm, flips)
        np.testing.assert_allclose(mask.affine, affine, atol=1e-5)
        np.testing.assert_array_equal(np.asanyarray(mask.dataobj), expected,
                                      err_msg=name)
        probs = np.asanyarray(
            nib.load(str(out / f'{name}_probs.nii.gz')).dataobj)
        expected_probs = np.stack([
            restore(ref_probs[..., k], img.affine, perm, flips)[0]
            for k in range(ref_probs.shape[-1])], -1)
        np.testing.assert_allclose(probs, expected_probs, atol=1e-6,
                                   err_msg=name)
    # ITK arrays are (z, y, x): the NIfTI array order reversed
    mha = sitk.ReadImage(str(out / 'as_mha.mha'))
    np.testing.assert_array_equal(
        sitk.GetArrayFromImage(mha), lut[reference].transpose(2, 1, 0))
    mha_probs = sitk.GetArrayFromImage(
        sitk.ReadImage(str(out / 'as_mha_probs.mha')))
    np.testing.assert_allclose(mha_probs, ref_probs.transpose(2, 1, 0, 3),
                               atol=1e-6)


def test_an_output_is_never_an_input(trained, tiny_spine_root, tmp_path):
    """``infer.py IN IN --overwrite`` and an output file equal to the input
    are refused before the model is loaded, and no input changes."""
    cfg_path, ckpt, _ = trained
    src = tmp_path / 'in'
    src.mkdir()
    good = sorted((raw_root(tiny_spine_root) / 'imagesTr').iterdir())[0]
    shutil.copy(good, src / 'scan.nii.gz')
    before = (src / 'scan.nii.gz').read_bytes()
    runs = {
        'same folder': [str(src), str(src), '--overwrite'],
        'same file': [str(src / 'scan.nii.gz'), str(src / 'scan.nii.gz'),
                      '--overwrite'],
    }
    for what, io in runs.items():
        proc = subprocess.run(
            [sys.executable, str(REPO_ROOT / 'tools/infer.py'),
             str(cfg_path), str(ckpt)] + io,
            capture_output=True, text=True, timeout=600)
        assert proc.returncode != 0, what
        assert 'error: output' in proc.stderr, (what, proc.stderr[-2000:])
        assert 'Traceback' not in proc.stderr
        assert sorted(p.name for p in src.iterdir()) == ['scan.nii.gz']
        assert (src / 'scan.nii.gz').read_bytes() == before, what
    # a mask beside its single input is fine
    assert output_paths([src / 'scan.nii.gz'], src / 'scan_mask.nii.gz') == [
        src / 'scan_mask.nii.gz']


def test_test_tool_refuses_a_checkpoint_of_another_model(trained, tmp_path):
    """A checkpoint whose head has another number of classes, or that lacks
    weights, is refused by name instead of tested half random."""
    import torch
    cfg_path, ckpt, _ = trained
    state = torch.load(str(ckpt), map_location='cpu', weights_only=False)
    key = next(k for k in state['state_dict'] if k.endswith('conv_seg.weight'))
    bad = dict(state)
    bad['state_dict'] = dict(state['state_dict'])
    w = bad['state_dict'][key]
    bad['state_dict'][key] = torch.zeros((w.shape[0] + 3, ) + w.shape[1:])
    torch.save(bad, str(tmp_path / 'other_head.pth'))
    partial = dict(state)
    partial['state_dict'] = {k: v for k, v in state['state_dict'].items()
                             if 'decode_head' not in k}
    torch.save(partial, str(tmp_path / 'partial.pth'))
    for name, match in (('other_head.pth', key), ('partial.pth', 'missing')):
        proc = subprocess.run(
            [sys.executable, str(REPO_ROOT / 'tools/test.py'), str(cfg_path),
             str(tmp_path / name), '--work-dir', str(tmp_path / 'w')],
            capture_output=True, text=True, timeout=600)
        assert proc.returncode != 0, name
        assert 'do not fit the model of the config' in proc.stderr, (
            proc.stderr[-2000:])
        assert match in proc.stderr and 'Traceback' not in proc.stderr
        assert 'mDice' not in proc.stdout


def test_a_bad_file_in_a_folder_run_is_named_and_the_rest_processed(
        trained, tiny_spine_root, tmp_path):
    cfg_path, ckpt, _ = trained
    good = sorted((raw_root(tiny_spine_root) / 'imagesTr').iterdir())[0]
    src = tmp_path / 'in'
    src.mkdir()
    shutil.copy(good, src / 'a_good.nii.gz')
    img = nib.load(str(good))
    bad = nib.Nifti1Image(np.asanyarray(img.dataobj), img.affine)
    bad.header['pixdim'][1] = np.nan
    bad.to_filename(str(src / 'b_nan_pixdim.nii.gz'))
    shutil.copy(good, src / 'c_good.nii.gz')
    out = tmp_path / 'out'
    proc = subprocess.run(
        [sys.executable, str(REPO_ROOT / 'tools/infer.py'), str(cfg_path),
         str(ckpt), str(src), str(out)],
        capture_output=True, text=True, timeout=600)
    log = proc.stdout + proc.stderr
    assert proc.returncode == 1
    assert 'b_nan_pixdim.nii.gz: voxel spacing' in log, log[-2000:]
    assert "1 of 3 input(s) failed and have no mask: ['b_nan_pixdim" in log
    assert 'Traceback' not in log
    assert sorted(p.name for p in out.iterdir()) == ['a_good.nii.gz',
                                                     'c_good.nii.gz']


def test_nifti_input_to_itk_output(trained, tiny_spine_root, tmp_path):
    """A NIfTI input with an .mha mask: the mask lies on the input's voxels
    as ITK reads them; a sheared NIfTI geometry, which ITK cannot hold, is
    refused by name and leaves no file."""
    sitk = pytest.importorskip('SimpleITK')
    cfg_path, ckpt, _ = trained
    good = sorted((raw_root(tiny_spine_root) / 'imagesTr').iterdir())[0]
    model = init_model(str(cfg_path), str(ckpt))
    pred = inference_volume(model, good, with_probs=True, progress=False)
    save_prediction(pred, tmp_path / 'mask.mha',
                    probs_file=tmp_path / 'mask_probs.mha')
    ref, out = sitk.ReadImage(str(good)), sitk.ReadImage(
        str(tmp_path / 'mask.mha'))
    lut = np.asarray(read_meta(tiny_spine_root)['label_values'])
    np.testing.assert_array_equal(sitk.GetArrayFromImage(out),
                                  lut[pred.labels].transpose(2, 1, 0))
    assert out.GetOrigin() == ref.GetOrigin()
    assert out.GetDirection() == ref.GetDirection()
    np.testing.assert_allclose(out.GetSpacing(), ref.GetSpacing())
    probs = sitk.GetArrayFromImage(
        sitk.ReadImage(str(tmp_path / 'mask_probs.mha')))
    np.testing.assert_allclose(probs, pred.probs.transpose(2, 1, 0, 3))

    img = nib.load(str(good))
    sheared = img.affine.copy()
    sheared[0, 1] += 0.3
    nib.Nifti1Image(np.asanyarray(img.dataobj), sheared).to_filename(
        str(tmp_path / 'sheared.nii.gz'))
    proc = subprocess.run(
        [sys.executable, str(REPO_ROOT / 'tools/infer.py'), str(cfg_path),
         str(ckpt), str(tmp_path / 'sheared.nii.gz'),
         str(tmp_path / 'sheared_mask.mha')],
        capture_output=True, text=True, timeout=600)
    log = proc.stdout + proc.stderr
    assert proc.returncode == 1
    assert 'cannot be written as .mha' in log and '.nii.gz instead' in log
    assert 'Traceback' not in log
    assert not (tmp_path / 'sheared_mask.mha').exists()


def test_a_misspelt_cfg_option_is_refused(trained, tmp_path):
    cfg_path, ckpt, _ = trained
    for tool, extra in (('train.py', []), ('test.py', [str(ckpt)])):
        proc = subprocess.run(
            [sys.executable, str(REPO_ROOT / 'tools' / tool), str(cfg_path)]
            + extra + ['--work-dir', str(tmp_path / tool), '--cfg-options',
                       'trian_cfg.max_iters=5'],
            capture_output=True, text=True, timeout=600)
        assert proc.returncode != 0, tool
        assert ("no top-level key 'trian_cfg'; did you mean 'train_cfg'"
                in proc.stderr), (tool, proc.stderr[-2000:])
        assert 'Traceback' not in proc.stderr
    with pytest.raises(ValueError, match="did you mean 'test_dataloader'"):
        init_model(str(cfg_path), str(ckpt),
                   cfg_options={'test_dataloder.batch_size': 2})
    # keys the runner reads are accepted even when the config lacks them
    model = init_model(str(cfg_path), str(ckpt),
                       cfg_options={'randomness.seed': 3})
    assert model.cfg.randomness.seed == 3


def test_test_tool_out_folder_is_never_mixed(trained, tmp_path):
    """``--out`` into a folder of an earlier run is refused; with
    ``--overwrite`` the whole set is replaced, and only by a test that
    succeeded."""
    cfg_path, ckpt, _ = trained
    out = tmp_path / 'out'
    out.mkdir()
    (out / 'old_case.nii.gz').write_bytes(b'a mask of an earlier run')

    def run(checkpoint, *extra):
        return subprocess.run(
            [sys.executable, str(REPO_ROOT / 'tools/test.py'), str(cfg_path),
             str(checkpoint), '--work-dir', str(tmp_path / 'w'), '--out',
             str(out), *extra],
            capture_output=True, text=True, timeout=600)

    proc = run(ckpt)
    assert proc.returncode != 0 and 'is not empty' in proc.stderr
    assert sorted(p.name for p in out.iterdir()) == ['old_case.nii.gz']
    # a failing test (no such checkpoint) keeps the earlier set
    proc = run(tmp_path / 'missing.pth', '--overwrite')
    assert proc.returncode != 0
    assert sorted(p.name for p in out.iterdir()) == ['old_case.nii.gz']
    proc = run(ckpt, '--overwrite')
    assert proc.returncode == 0, proc.stderr[-2000:]
    names = sorted(p.name for p in out.iterdir())
    assert 'old_case.nii.gz' not in names
    assert 'volume_metrics_per_case.json' in names
    assert any(n.endswith('.nii.gz') for n in names)
    leftovers = [p.name for p in tmp_path.iterdir() if p.name.startswith('.')]
    assert leftovers == []
