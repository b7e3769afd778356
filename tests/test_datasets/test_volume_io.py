"""Tests of cps4.datasets.volume_io and cps4.datasets.intensity."""
import nibabel as nib
import numpy as np
import pytest

from cps4.datasets.intensity import (apply_intensity_window,
                                     intensity_window, normalize_intensity)
from cps4.datasets.volume_io import (choose_slice_axis, read_volume,
                                     read_volume_header, strip_suffix,
                                     volume_suffix, write_nifti,
                                     write_volume_like)
from cps4.utils.fileio import DatasetFormatError


def test_choose_slice_axis():
    assert choose_slice_axis((0.5, 0.5, 4.0), (512, 512, 15)) == 2
    assert choose_slice_axis((3.3, 0.6, 0.6), (20, 400, 400)) == 0
    # ties -> the smallest dimension, then the lowest axis
    assert choose_slice_axis((1.0, 1.0, 1.0), (224, 224, 77)) == 2
    assert choose_slice_axis((1.0, 1.0, 1.0), (30, 50, 30)) == 0


def test_normalize_intensity():
    x = np.arange(1000, dtype=np.float32).reshape(10, 10, 10)
    x[0, 0, 0] = -1e6  # outlier clipped at the 0.5th percentile
    y = normalize_intensity(x)
    assert y.dtype == np.uint8 and y.min() == 0 and y.max() == 255
    assert y[0, 0, 0] == 0 and y[0, 0, 1] == 0
    sparse = np.zeros((10, 10, 10), np.float32)
    sparse[0, 0, 0] = 5  # percentile range empty -> min/max
    assert normalize_intensity(sparse).max() == 255


def test_intensity_window_in_pieces_equals_at_once():
    rng = np.random.default_rng(0)
    x = rng.normal(100.0, 30.0, (6, 7, 8)).astype(np.float32)
    lo, hi = intensity_window(x)
    pieces = np.stack(
        [apply_intensity_window(x[i], lo, hi) for i in range(6)])
    np.testing.assert_array_equal(pieces, normalize_intensity(x))
    with pytest.raises(DatasetFormatError, match='constant'):
        intensity_window(np.full((3, 3), 42.0), 'flat.nii.gz')
    bad = x.copy()
    bad[0, 0, 0] = np.nan
    with pytest.raises(DatasetFormatError, match='bad.nii.gz: 1 voxels'):
        intensity_window(bad, 'bad.nii.gz')


def test_write_nifti_round_trip(tmp_path):
    affine = np.diag([0.8, 0.9, 3.5, 1.0])
    affine[:3, 3] = (-5.0, 2.0, 7.0)
    data = np.arange(4 * 5 * 3, dtype=np.int16).reshape(4, 5, 3)
    path = tmp_path / 'case.nii.gz'
    write_nifti(path, data, affine)
    vol = read_volume(path, is_label=True)
    np.testing.assert_array_equal(vol.data, data)
    np.testing.assert_allclose(vol.affine, affine)
    assert vol.spacing == pytest.approx((0.8, 0.9, 3.5))
    header = read_volume_header(path)
    assert header.shape == (4, 5, 3)
    img = nib.load(str(path))
    assert int(img.header['qform_code']) == 1
    assert int(img.header['sform_code']) == 1
    assert img.header.get_xyzt_units() == ('unknown', 'unknown')
    # the unit is stored only when asked for
    write_nifti(tmp_path / 'mm.nii.gz', data, affine, xyzt_units='mm')
    assert nib.load(str(tmp_path / 'mm.nii.gz')).header.get_xyzt_units()[0] \
        == 'mm'
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        'case.nii.gz', 'mm.nii.gz'
    ]  # no temporary files left
    with pytest.raises(DatasetFormatError, match='must end with .nii'):
        write_nifti(tmp_path / 'case.mha', data, affine)


def test_write_volume_like_keeps_reference_geometry(tmp_path):
    affine = np.diag([1.0, 1.0, 3.0, 1.0])
    ref = tmp_path / 'ref.nii.gz'
    write_nifti(ref, np.zeros((4, 5, 3), np.float32), affine)
    out = tmp_path / 'pred.nii.gz'
    write_volume_like(out, np.ones((4, 5, 3), np.uint8), ref)
    vol = read_volume(out, is_label=True)
    assert vol.data.dtype == np.uint8 and vol.data.sum() == 60
    np.testing.assert_allclose(vol.affine, affine)
    with pytest.raises(DatasetFormatError, match='does not match'):
        write_volume_like(out, np.ones((4, 5, 2), np.uint8), ref)


def test_read_volume_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match='missing.nii.gz: file not'):
        read_volume(tmp_path / 'missing.nii.gz', 'missing.nii.gz')
    broken = tmp_path / 'broken.nii.gz'
    broken.write_bytes(b'not a volume')
    with pytest.raises(DatasetFormatError, match='cannot read the file'):
        read_volume(broken)
    flat = tmp_path / 'flat.nii.gz'
    nib.Nifti1Image(np.zeros((6, 7), np.float32), np.eye(4)).to_filename(
        str(flat))
    with pytest.raises(DatasetFormatError, match="use the 'png2d' layout"):
        read_volume(flat)
    frac = tmp_path / 'frac.nii.gz'
    nib.Nifti1Image(np.full((2, 2, 2), 0.5, np.float32),
                    np.eye(4)).to_filename(str(frac))
    with pytest.raises(DatasetFormatError, match='non-integer'):
        read_volume(frac, is_label=True)


def test_suffixes():
    assert strip_suffix('case_001.nii.gz') == 'case_001'
    assert strip_suffix('a.MHA') == 'a'
    assert strip_suffix('notes.txt') == 'notes.txt'
    assert volume_suffix('x/y.NII.GZ') == '.nii.gz'
    with pytest.raises(DatasetFormatError, match='unknown volume suffix'):
        volume_suffix('y.png')
