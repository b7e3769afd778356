"""Tests of cps4.datasets.converters: layouts -> 2D slices -> volumes."""
import hashlib
import importlib.util
import json
import sys
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from PIL import Image

from cps4.datasets.converters import (MRSPINESEG_CLASSES,
                                      SPIDER_DEFAULT_LABEL_MAP,
                                      DatasetFormatError, convert_dataset,
                                      load_case_volume, load_split,
                                      read_meta, reassemble_volume,
                                      split_filename)

REPO = Path(__file__).parents[2]
# the converter scripts import their shared options from their own folder
sys.path.insert(0, str(REPO / 'tools' / 'dataset_converters'))
SHARED_DATA = REPO.parent / 'shared' / 'data'
SHAPE = (16, 12, 5)


# ----------------------------------------------------------------- fixtures
def _image(rng, shape=SHAPE):
    grid = np.indices(shape).sum(0).astype(np.float32)
    return grid * 10 + rng.normal(0, 3, shape).astype(np.float32)


def _labels(rng, values, shape=SHAPE):
    lab = rng.choice(np.asarray(values), size=shape).astype(np.uint8)
    lab[:, :, 0] = 0  # an empty lateral slice, which must still be stored
    return lab


def _save_nii(path, arr, spacing=(1.0, 1.0, 3.0)):
    path.parent.mkdir(parents=True, exist_ok=True)
    affine = np.diag(list(spacing) + [1.0])
    affine[:3, 3] = (-5.0, 2.0, 7.0)
    nib.Nifti1Image(arr, affine).to_filename(str(path))


def make_nnunet(root, n=4, values=(0, 2, 5), labels=None, seed=0, **extra):
    """Tiny nnU-Net v2 dataset; returns {case_id: label array}."""
    rng = np.random.default_rng(seed)
    labels = labels or {'background': 0, 'disc': 2, 'vertebra': 5}
    truth = {}
    for i in range(n):
        case = f'case_{i:03d}'
        _save_nii(root / 'imagesTr' / f'{case}_0000.nii.gz', _image(rng))
        truth[case] = _labels(rng, values)
        _save_nii(root / 'labelsTr' / f'{case}.nii.gz', truth[case])
    meta = dict(name='tiny', labels=labels, file_ending='.nii.gz', **extra)
    (root / 'dataset.json').write_text(json.dumps(meta))
    return truth


def snapshot(folder):
    """Hash every file below ``folder``."""
    return {
        p.relative_to(folder).as_posix():
        hashlib.md5(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob('*')) if p.is_file()
    }


def read_label_png(out, case, i):
    return np.array(Image.open(out / 'labels' / f'{case}_{i:04d}.png'))


@pytest.fixture
def nnunet_src(tmp_path):
    src = tmp_path / 'raw'
    truth = make_nnunet(src)
    return src, truth


@pytest.fixture
def converted(tmp_path, nnunet_src):
    """A complete converted OUT (the thing bad inputs must not damage)."""
    src, truth = nnunet_src
    out = convert_dataset(src, tmp_path / 'out', 'nnunet')
    return out, snapshot(out)


# ------------------------------------------------------------ nnU-Net / MSD
def test_nnunet_round_trip_and_meta(tmp_path, nnunet_src):
    src, truth = nnunet_src
    out = convert_dataset(src, tmp_path / 'out', 'nnunet')
    assert out == (tmp_path / 'out').absolute()

    meta = json.loads((out / 'meta.json').read_text())
    assert meta['name'] == 'tiny'
    assert meta['layout'] == 'nnunet'
    assert meta['source_root'] == str(src.absolute())
    assert meta['classes'] == ['background', 'disc', 'vertebra']
    assert meta['label_values'] == [0, 2, 5]
    assert len(meta['palette']) == 3 and meta['palette'][0] == [0, 0, 0]
    assert meta['slice_axis'] == 2  # largest spacing (3 mm) is axis 2
    assert sorted(meta['cases']) == sorted(truth)
    case = meta['cases']['case_001']
    assert case['n_slices'] == 5
    assert case['shape'] == list(SHAPE)
    assert case['spacing'] == [1.0, 1.0, 3.0]
    assert np.allclose(case['affine'],
                       [[1, 0, 0, -5], [0, 1, 0, 2], [0, 0, 3, 7],
                        [0, 0, 0, 1]])
    assert case['image'] == 'imagesTr/case_001_0000.nii.gz'
    assert case['label'] == 'labelsTr/case_001.nii.gz'
    assert case['foreground_voxels'] == np.count_nonzero(truth['case_001'])

    # every slice is stored (the empty slice 0 included), rows = axis 0
    assert len(list((out / 'images').glob('*.png'))) == 4 * 5
    assert len(list((out / 'labels').glob('*.png'))) == 4 * 5
    lab = read_label_png(out, 'case_001', 3)
    assert lab.dtype == np.uint8 and lab.shape == SHAPE[:2]
    lut = np.zeros(6, np.uint8)
    lut[[0, 2, 5]] = [0, 1, 2]
    np.testing.assert_array_equal(lab, lut[truth['case_001'][:, :, 3]])
    assert not read_label_png(out, 'case_001', 0).any()

    for case_id, mask in truth.items():
        np.testing.assert_array_equal(
            load_case_volume(out, case_id, to_source_values=True), mask)
        np.testing.assert_array_equal(
            load_case_volume(out, case_id), lut[mask])

    # per-case normalisation spans 0..255
    img = load_case_volume(out, 'case_002', what='image')
    assert img.dtype == np.uint8 and img.shape == SHAPE
    assert img.min() == 0 and img.max() == 255

    # default splits, loadable and validated against meta.json
    names = sorted(p.name for p in (out / 'splits').iterdir())
    assert len(names) == 15 and 'seed1_25pct.json' in names
    split = load_split(out / 'splits' / 'seed0_100pct.json')
    assert sorted(sum((split[k] for k in ('labelled', 'unlabelled', 'val',
                                          'test')), [])) == sorted(truth)
    # nothing temporary left next to OUT
    assert sorted(p.name for p in tmp_path.iterdir()) == ['out', 'raw']


def test_nnunet_v1_labels_palette_and_slice_axis(tmp_path):
    src = tmp_path / 'raw'
    truth = make_nnunet(
        src,
        n=3,
        values=(0, 1, 2),
        labels={
            '0': 'background',
            '2': 'vertebra',
            '1': 'disc'
        },
        slice_axis=0,
        palette=[[0, 0, 0], [1, 2, 3], [4, 5, 6]])
    out = convert_dataset(
        src, tmp_path / 'out', 'nnunet', slice_axis=1, splits=False)
    meta = read_meta(out)
    assert meta['classes'] == ['background', 'disc', 'vertebra']
    assert meta['palette'] == [[0, 0, 0], [1, 2, 3], [4, 5, 6]]
    assert meta['slice_axis'] == 0  # dataset.json wins over the argument
    assert meta['cases']['case_000']['n_slices'] == SHAPE[0]
    assert not (out / 'splits').exists()
    np.testing.assert_array_equal(
        read_label_png(out, 'case_002', 7), truth['case_002'][7])
    np.testing.assert_array_equal(
        load_case_volume(out, 'case_002'), truth['case_002'])


def test_msd_file_names(tmp_path):
    src = tmp_path / 'Task99_Spine'
    truth = make_nnunet(src, n=3, labels={'0': 'bg', '2': 'a', '5': 'b'})
    for path in (src / 'imagesTr').iterdir():  # MSD: no channel suffix
        path.rename(path.with_name(path.name.replace('_0000', '')))
    out = convert_dataset(src, tmp_path / 'out', 'nnunet', splits=False)
    meta = read_meta(out)
    assert meta['cases']['case_001']['image'] == 'imagesTr/case_001.nii.gz'
    np.testing.assert_array_equal(
        load_case_volume(out, 'case_001', to_source_values=True),
        truth['case_001'])


def test_interrupted_conversion_keeps_out(converted, nnunet_src,
                                          monkeypatch):
    import cps4.datasets.converters.convert as convert_module
    out, before = converted
    src, _ = nnunet_src
    calls = []

    def write_then_interrupt(path, array):
        calls.append(path)
        if len(calls) == 12:  # in the middle of the second case
            raise KeyboardInterrupt
        Image.fromarray(array).save(path)

    monkeypatch.setattr(convert_module, 'write_png', write_then_interrupt)
    with pytest.raises(KeyboardInterrupt):
        convert_dataset(src, out, 'nnunet', overwrite=True)
    assert snapshot(out) == before
    assert sorted(p.name for p in out.parent.iterdir()) == ['out', 'raw']


def test_cli_slice_axis_rename_and_case_filter(tmp_path, nnunet_src):
    src, truth = nnunet_src
    out = convert_dataset(
        src,
        tmp_path / 'out',
        'nnunet',
        classes='bg,d,v',
        slice_axis=1,
        cases=['case_003', 'case_001'])
    meta = read_meta(out)
    assert meta['classes'] == ['bg', 'd', 'v']
    assert meta['slice_axis'] == 1
    assert sorted(meta['cases']) == ['case_001', 'case_003']
    assert read_label_png(out, 'case_003', 0).shape == (16, 5)
    np.testing.assert_array_equal(
        load_case_volume(out, 'case_003', to_source_values=True),
        truth['case_003'])
    with pytest.raises(ValueError, match=r"\['nope'\] not found"):
        convert_dataset(src, tmp_path / 'o2', 'nnunet', cases=['nope'])
    with pytest.raises(DatasetFormatError, match='has 2 names'):
        convert_dataset(src, tmp_path / 'o3', 'nnunet', classes='a,b')


def test_overwrite(tmp_path, converted, nnunet_src):
    out, before = converted
    src, _ = nnunet_src
    with pytest.raises(FileExistsError, match='--overwrite'):
        convert_dataset(src, out, 'nnunet')
    assert snapshot(out) == before
    convert_dataset(src, out, 'nnunet', overwrite=True, cases=['case_000'])
    assert list(read_meta(out)['cases']) == ['case_000']
    assert sorted(p.name for p in tmp_path.iterdir()) == ['out', 'raw']
    # never replace a folder that is not a converted dataset
    other = tmp_path / 'precious'
    other.mkdir()
    (other / 'notes.txt').write_text('keep me')
    with pytest.raises(FileExistsError, match='not a converted dataset'):
        convert_dataset(src, other, 'nnunet', overwrite=True)
    assert (other / 'notes.txt').read_text() == 'keep me'
    with pytest.raises(ValueError, match='overlaps the source'):
        convert_dataset(src, src / 'out', 'nnunet')


def test_reassemble_volume():
    vol = np.arange(4 * 5 * 6).reshape(4, 5, 6)
    for axis in (0, 1, 2, -1):
        slices = [np.take(vol, i, axis) for i in range(vol.shape[axis])]
        n = len(slices)
        np.testing.assert_array_equal(reassemble_volume(slices, n, axis), vol)
        as_dict = {i: s for i, s in enumerate(slices)}
        np.testing.assert_array_equal(reassemble_volume(as_dict, n, axis),
                                      vol)
    partial = {1: np.ones((4, 5), int)}
    with pytest.raises(ValueError, match=r'indices \[0, 2\].*fill_value'):
        reassemble_volume(partial, 3, 2)
    filled = reassemble_volume(partial, 3, 2, fill_value=0)
    assert filled.shape == (4, 5, 3) and filled.sum() == 20
    with pytest.raises(ValueError, match='outside 0..2'):
        reassemble_volume({3: np.ones((4, 5))}, 3, 2)
    with pytest.raises(ValueError, match='one shape'):
        reassemble_volume([np.ones((4, 5)), np.ones((5, 4))], 2, 0)


@pytest.mark.skipif(
    not (SHARED_DATA / 'myosegmentum_vb' / 'dataset.json').is_file(),
    reason='shared myosegmentum_vb data not available')
def test_real_myosegmentum_two_cases(tmp_path):
    src = SHARED_DATA / 'myosegmentum_vb'
    out = convert_dataset(
        src, tmp_path / 'vb', 'nnunet', cases=['vb3_001', 'vb3_002'])
    meta = read_meta(out)
    assert meta['classes'] == ['background', 'L1', 'L2', 'L3', 'L4', 'L5']
    assert meta['slice_axis'] == 2
    for case_id in ('vb3_001', 'vb3_002'):
        ref = nib.load(str(src / 'labelsTr' / f'{case_id}.nii.gz'))
        mask = np.asarray(ref.dataobj)
        case = meta['cases'][case_id]
        assert case['shape'] == list(mask.shape)
        assert case['n_slices'] == mask.shape[2]
        np.testing.assert_array_equal(
            load_case_volume(out, case_id, to_source_values=True), mask)
        first = Image.open(out / 'images' / f'{case_id}_0000.png')
        assert first.mode == 'L' and first.size == (224, 224)


# ------------------------------------------------------------- MRSpineSeg
def test_mrspineseg_round_trip(tmp_path):
    src = tmp_path / 'MRSpineSeg'
    rng = np.random.default_rng(1)
    truth = {}
    for i in (1, 2, 10):
        _save_nii(src / 'MR' / f'Case{i}.nii.gz', _image(rng),
                  spacing=(4.0, 0.5, 0.5))
        truth[f'Case{i}'] = _labels(rng, [0, 1, 2, 11, 19])
        _save_nii(src / 'Mask' / f'mask_case{i}.nii.gz', truth[f'Case{i}'],
                  spacing=(4.0, 0.5, 0.5))
    out = convert_dataset(src, tmp_path / 'out', 'mrspineseg')
    meta = read_meta(out)
    assert meta['classes'] == list(MRSPINESEG_CLASSES)
    assert meta['classes'][11] == 'L5/S' and len(meta['classes']) == 20
    assert meta['label_values'] == list(range(20))
    assert meta['slice_axis'] == 0
    assert sorted(meta['cases']) == ['Case1', 'Case10', 'Case2']
    assert meta['cases']['Case2']['label'] == 'Mask/mask_case2.nii.gz'
    for case_id, mask in truth.items():
        np.testing.assert_array_equal(load_case_volume(out, case_id), mask)


# ----------------------------------------------------------------- SPIDER
def _save_mha(path, arr_zyx, spacing_xyz=(0.6, 0.6, 3.3)):
    import SimpleITK as sitk
    path.parent.mkdir(parents=True, exist_ok=True)
    img = sitk.GetImageFromArray(arr_zyx)
    img.SetSpacing(spacing_xyz)
    img.SetOrigin((10.0, -20.0, 30.0))
    sitk.WriteImage(img, str(path))


def make_spider(root, ids=(1, 7)):
    rng = np.random.default_rng(2)
    shape = (5, 12, 16)  # (z, y, x) numpy order of a SimpleITK image
    truth = {}
    for i in ids:
        _save_mha(root / 'images' / f'{i}_t2.mha', _image(rng, shape))
        _save_mha(root / 'images' / f'{i}_t1.mha', _image(rng, shape))
        mask = np.zeros(shape, np.int16)
        mask[1, 2:4, 2:5] = 1  # vertebra 1 -> L5
        mask[2, 2:4, 2:5] = 201  # disc below vertebra 1 -> L5/S
        mask[3, 5:7, 2:5] = 9  # -> T9
        mask[3, 8:10, 2:5] = 10  # above T9 -> background
        mask[4, 0:3, 0:3] = 100  # spinal canal -> background
        mask[4, 5:6, 5:8] = 209  # -> T9/T10
        truth[str(i)] = mask
        _save_mha(root / 'masks' / f'{i}_t2.mha', mask)
    return truth


def test_spider_mapping_and_geometry(tmp_path):
    import SimpleITK as sitk
    src = tmp_path / 'SPIDER'
    truth = make_spider(src)
    out = convert_dataset(src, tmp_path / 'out', 'spider', sequence='t2')
    meta = read_meta(out)
    names = meta['classes']
    assert names == list(MRSPINESEG_CLASSES)
    assert meta['sequence'] == 't2'
    assert meta['label_values'][names.index('L5')] == 1
    assert meta['label_values'][names.index('L5/S')] == 201
    assert meta['label_values'][names.index('S')] is None
    assert meta['label_map']['100'] == 'background'
    assert meta['slice_axis'] == 0  # (z, y, x) spacing (3.3, 0.6, 0.6)
    case = meta['cases']['7']
    assert case['shape'] == [5, 12, 16]
    assert np.allclose(case['spacing'], [3.3, 0.6, 0.6])
    assert case['image'] == 'images/7_t2.mha'
    # the affine maps array indices (z, y, x) to RAS = LPS with x, y negated
    img = sitk.ReadImage(str(src / 'images' / '7_t2.mha'))
    lps = img.TransformIndexToPhysicalPoint((4, 3, 2))  # (x, y, z) index
    ras = np.asarray(case['affine']) @ [2, 3, 4, 1]
    assert np.allclose(ras[:3], [-lps[0], -lps[1], lps[2]])

    lab = load_case_volume(out, '7')
    mask = truth['7']
    assert np.all(lab[mask == 1] == names.index('L5'))
    assert np.all(lab[mask == 201] == names.index('L5/S'))
    assert np.all(lab[mask == 9] == names.index('T9'))
    assert np.all(lab[mask == 209] == names.index('T9/T10'))
    assert np.all(lab[(mask == 10) | (mask == 100)] == 0)
    back = load_case_volume(out, '7', to_source_values=True)
    expected = np.where(np.isin(mask, [10, 100]), 0, mask)
    np.testing.assert_array_equal(back, expected)


def test_spider_label_map_override(tmp_path):
    src = tmp_path / 'SPIDER'
    truth = make_spider(src, ids=(3, ))
    label_map = tmp_path / 'map.json'
    label_map.write_text(json.dumps({'100': 'canal', '10': 'T8'}))
    out = convert_dataset(
        src, tmp_path / 'out', 'spider', label_map=label_map, splits=False)
    meta = read_meta(out)
    assert meta['classes'][-2:] == ['T8', 'canal']
    lab = load_case_volume(out, '3')
    assert np.all(lab[truth['3'] == 100] == meta['classes'].index('canal'))
    assert np.all(lab[truth['3'] == 10] == meta['classes'].index('T8'))
    np.testing.assert_array_equal(
        load_case_volume(out, '3', to_source_values=True), truth['3'])
    assert SPIDER_DEFAULT_LABEL_MAP[100] == 'background'  # not mutated
    with pytest.raises(DatasetFormatError, match="'canal', which is not in"):
        convert_dataset(
            src,
            tmp_path / 'o2',
            'spider',
            classes='background,L5',
            label_map={100: 'canal'})
    with pytest.raises(ValueError, match='only supported for the spider'):
        convert_dataset(src, tmp_path / 'o3', 'nnunet', label_map={1: 'a'})


# ------------------------------------------------------------------ png2d
def _save_png(path, arr):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(arr.astype(np.uint8)).save(path)


def test_png2d_plain_and_mmseg(tmp_path):
    rng = np.random.default_rng(3)
    plain = tmp_path / 'plain'
    truth = {}
    for name in ('a', 'b', 'c'):
        _save_png(plain / 'images' / f'{name}.png',
                  rng.integers(0, 200, (20, 24)))
        truth[name] = rng.integers(0, 3, (20, 24)).astype(np.uint8)
        _save_png(plain / 'labels' / f'{name}.png', truth[name])
    with pytest.raises(ValueError, match='--classes'):
        convert_dataset(plain, tmp_path / 'o0', 'png2d')
    out = convert_dataset(
        plain, tmp_path / 'out', 'png2d', classes='background,disc,vertebra')
    meta = read_meta(out)
    assert meta['classes'] == ['background', 'disc', 'vertebra']
    assert meta['label_values'] == [0, 1, 2]
    assert meta['slice_axis'] == 2
    assert meta['cases']['b']['shape'] == [20, 24, 1]
    assert meta['cases']['b']['n_slices'] == 1
    for name, lab in truth.items():
        np.testing.assert_array_equal(read_label_png(out, name, 0), lab)
        np.testing.assert_array_equal(
            load_case_volume(out, name)[..., 0], lab)

    mmseg = tmp_path / 'mmseg'
    for subset, name in (('train', 'x'), ('val', 'y')):
        _save_png(mmseg / 'img_dir' / subset / f'{name}.png',
                  rng.integers(0, 200, (8, 8)))
        _save_png(mmseg / 'ann_dir' / subset / f'{name}.png',
                  np.full((8, 8), 255 if name == 'x' else 0))
    (mmseg / 'dataset.json').write_text(
        json.dumps({'labels': {
            'background': 0,
            'spine': 255
        }}))
    out = convert_dataset(mmseg, tmp_path / 'out2', 'png2d')
    meta = read_meta(out)
    assert meta['classes'] == ['background', 'spine']
    assert meta['cases']['x']['subset'] == 'train'
    assert meta['cases']['y']['image'] == 'img_dir/val/y.png'
    assert read_label_png(out, 'x', 0).max() == 1
    assert load_case_volume(out, 'x', to_source_values=True).max() == 255


@pytest.mark.skipif(
    not (SHARED_DATA / 'lumbar2d' / 'images').is_dir(),
    reason='shared lumbar2d data not available')
def test_real_lumbar2d(tmp_path):
    src = SHARED_DATA / 'lumbar2d'
    out = convert_dataset(
        src, tmp_path / 'l2d', 'png2d', classes=['background', 'disc',
                                                  'vertebra'])
    meta = read_meta(out)
    assert len(meta['cases']) == 20
    lab = np.array(Image.open(src / 'labels' / '02.png'))
    np.testing.assert_array_equal(load_case_volume(out, '02')[..., 0], lab)
    # slices 00, 05 and 10 show no spine: never the labelled slice
    empty = sorted(c for c, e in meta['cases'].items()
                   if e['foreground_voxels'] == 0)
    assert empty == ['00', '05', '10']
    for seed in (0, 1, 2):
        for ratio in (0.01, 0.05, 0.1, 0.25):
            split = load_split(out / 'splits' / split_filename(seed, ratio))
            assert not set(split['labelled']) & set(empty), (seed, ratio)


# ------------------------------------------------------------- bad inputs
def _expect_failure(converted, src, exc, match, **kwargs):
    """Converting ``src`` over the existing OUT fails and leaves it intact."""
    out, before = converted
    with pytest.raises(exc, match=match):
        convert_dataset(src, out, 'nnunet', overwrite=True, **kwargs)
    assert snapshot(out) == before
    leftovers = [p.name for p in out.parent.iterdir() if p.name != 'out'
                 and p.name.startswith('.')]
    assert leftovers == []


def test_bad_missing_image(converted, nnunet_src):
    src, _ = nnunet_src
    (src / 'imagesTr' / 'case_002_0000.nii.gz').unlink()
    _expect_failure(converted, src, FileNotFoundError,
                    r'imagesTr/case_002_0000\.nii\.gz \(mask '
                    r'labelsTr/case_002\.nii\.gz exists\); add the images')


def test_bad_missing_mask(converted, nnunet_src, tmp_path):
    src, _ = nnunet_src
    (src / 'labelsTr' / 'case_001.nii.gz').unlink()
    _expect_failure(converted, src, FileNotFoundError,
                    r'labelsTr/case_001\.nii\.gz \(image .*exists\)')
    # unless unlabelled cases are allowed
    out = convert_dataset(
        src, tmp_path / 'semi', 'nnunet', allow_unlabelled=True)
    meta = read_meta(out)
    assert meta['cases']['case_001']['label'] is None
    assert not list((out / 'labels').glob('case_001_*'))
    split = load_split(out / 'splits' / 'seed0_100pct.json')
    assert 'case_001' in split['unlabelled']
    with pytest.raises(ValueError, match='unlabelled'):
        load_case_volume(out, 'case_001')


def test_bad_corrupt_file(converted, nnunet_src):
    src, _ = nnunet_src
    path = src / 'imagesTr' / 'case_003_0000.nii.gz'
    data = path.read_bytes()
    path.write_bytes(data[:len(data) // 2])
    _expect_failure(converted, src, DatasetFormatError,
                    r'imagesTr/case_003_0000\.nii\.gz: cannot read .*'
                    're-download')
    path.write_bytes(b'not a nifti at all')
    _expect_failure(converted, src, DatasetFormatError,
                    r'case_003_0000\.nii\.gz: cannot read')


def test_bad_shape_mismatch(converted, nnunet_src):
    src, _ = nnunet_src
    _save_nii(src / 'labelsTr' / 'case_000.nii.gz',
              np.zeros((16, 12, 4), np.uint8))
    _expect_failure(converted, src, DatasetFormatError,
                    r'labelsTr/case_000\.nii\.gz: mask shape \[16, 12, 4\] '
                    r'differs from image .* shape \[16, 12, 5\]')


def test_bad_label_values(converted, nnunet_src):
    src, _ = nnunet_src
    mask = np.zeros(SHAPE, np.uint8)
    mask[1, 1, 1], mask[2, 2, 2] = 7, 9
    _save_nii(src / 'labelsTr' / 'case_002.nii.gz', mask)
    _expect_failure(
        converted, src, DatasetFormatError,
        r"labelsTr/case_002\.nii\.gz: label values \[7, 9\] are not in "
        r"dataset\.json 'labels' .*fix the mask or add them")


def test_bad_label_dtype(converted, nnunet_src):
    """A float mask with fractional values (e.g. a resampled, interpolated
    mask) is refused rather than rounded into wrong units."""
    src, _ = nnunet_src
    mask = np.zeros(SHAPE, np.float32)
    mask[1, 1, 1] = 1.5
    _save_nii(src / 'labelsTr' / 'case_001.nii.gz', mask)
    _expect_failure(
        converted, src, DatasetFormatError,
        r'labelsTr/case_001\.nii\.gz: label array holds non-integer or '
        r'non-finite values')


@pytest.mark.parametrize('kind', ['nan', 'inf', 'constant'])
def test_bad_image_values(converted, nnunet_src, kind):
    src, _ = nnunet_src
    img = np.full(SHAPE, 42.0, np.float32)
    if kind != 'constant':
        img = np.random.default_rng(0).normal(size=SHAPE).astype(np.float32)
        img[3, 3, 3] = np.nan if kind == 'nan' else np.inf
    _save_nii(src / 'imagesTr' / 'case_001_0000.nii.gz', img)
    match = ('constant' if kind == 'constant' else
             r'1 voxels are NaN or infinite')
    _expect_failure(converted, src, DatasetFormatError,
                    r'imagesTr/case_001_0000\.nii\.gz: .*' + match)


def test_bad_2d_file(converted, nnunet_src):
    src, _ = nnunet_src
    _save_nii(src / 'imagesTr' / 'case_000_0000.nii.gz',
              np.ones((16, 12), np.float32))
    _expect_failure(converted, src, DatasetFormatError,
                    r'case_000_0000\.nii\.gz: expected a 3D volume .*'
                    r"\[16, 12\] \(use the 'png2d' layout")


def test_bad_empty_dataset_and_arguments(converted, tmp_path):
    empty = tmp_path / 'empty'
    (empty / 'imagesTr').mkdir(parents=True)
    (empty / 'dataset.json').write_text(
        json.dumps({'labels': {
            'background': 0
        }}))
    _expect_failure(converted, empty, DatasetFormatError, 'no cases found')
    (empty / 'dataset.json').write_text(json.dumps({'name': 'x'}))
    _expect_failure(converted, empty, DatasetFormatError,
                    r"dataset\.json: no 'labels' key")
    (empty / 'dataset.json').write_text(
        json.dumps({'labels': {
            'a': 1,
            'b': 2
        }}))
    _expect_failure(converted, empty, DatasetFormatError, 'no value 0')
    (empty / 'dataset.json').unlink()
    _expect_failure(converted, empty, FileNotFoundError, 'dataset.json')
    _expect_failure(converted, tmp_path / 'nowhere', FileNotFoundError,
                    'does not exist')
    out, before = converted
    with pytest.raises(ValueError,
                       match=r"unknown layout 'nifti'.*nnunet, mrspineseg"):
        convert_dataset(empty, out, 'nifti', overwrite=True)
    with pytest.raises(ValueError, match=r'\(0, 1\], got 1\.5'):
        convert_dataset(
            empty, out, 'nnunet', overwrite=True, split_ratios=[0.1, 1.5])
    assert snapshot(out) == before


def test_cli(tmp_path, nnunet_src):
    src, truth = nnunet_src
    spec = importlib.util.spec_from_file_location(
        'nnunet_cli', REPO / 'tools' / 'dataset_converters' / 'nnunet.py')
    cli = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(cli)
    out = tmp_path / 'cli_out'
    assert cli.main([str(src), str(out), '--seeds', '4', '--ratios',
                     '0.5']) == 0
    assert sorted(p.name for p in (out / 'splits').iterdir()) == [
        'seed4_50pct.json'
    ]
    assert sorted(read_meta(out)['cases']) == sorted(truth)
    assert cli.main([str(src), str(out)]) == 1  # exists, no --overwrite


def _load_tool(name):
    spec = importlib.util.spec_from_file_location(
        f'{name}_cli', REPO / 'tools' / 'dataset_converters' / f'{name}.py')
    cli = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(cli)
    return cli


def test_spider_cli_options(tmp_path):
    src = tmp_path / 'SPIDER'
    truth = make_spider(src, ids=(3, ))
    label_map = tmp_path / 'map.json'
    label_map.write_text(json.dumps({'100': 'canal'}))
    cli = _load_tool('spider')
    out = tmp_path / 'out'
    assert cli.main([
        str(src),
        str(out), '--sequence', 't2', '--label-map',
        str(label_map), '--no-splits', '--name', 'sp'
    ]) == 0
    meta = read_meta(out)
    assert meta['name'] == 'sp' and meta['sequence'] == 't2'
    assert meta['classes'][-1] == 'canal' and not (out / 'splits').exists()
    lab = load_case_volume(out, '3')
    assert np.all(lab[truth['3'] == 100] == len(meta['classes']) - 1)
    # no T1 masks: the failure is reported as exit code 1
    assert cli.main([str(src), str(tmp_path / 't1'), '--sequence',
                     't1']) == 1
    assert not (tmp_path / 't1').exists()


def test_png2d_cli_requires_classes(tmp_path):
    root = tmp_path / 'raw'
    (root / 'images').mkdir(parents=True)
    (root / 'labels').mkdir()
    Image.fromarray(np.arange(64, dtype=np.uint8).reshape(8, 8)).save(
        root / 'images' / 'a.png')
    Image.fromarray((np.arange(64).reshape(8, 8) % 3).astype(
        np.uint8)).save(root / 'labels' / 'a.png')
    cli = _load_tool('png2d')
    assert cli.main([str(root), str(tmp_path / 'o1')]) == 1
    assert cli.main([
        str(root),
        str(tmp_path / 'o2'), '--classes', 'bg,a,b', '--slice-axis', '0'
    ]) == 0
    assert read_meta(tmp_path / 'o2')['classes'] == ['bg', 'a', 'b']
