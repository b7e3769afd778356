"""Axis orientation: reorienting volumes, pairing masks with images, and
converting datasets whose cases are stored in different axis orders."""
import itertools
import json

import nibabel as nib
import numpy as np
import pytest

from cps4.datasets.converters import DatasetFormatError, convert_dataset
from cps4.datasets.meta import dataset_orientation
from cps4.datasets.orientation import (check_axcodes, match_grid,
                                       orientation_of, reorientation)

from axis_orders import restore
from test_converters import make_nnunet, snapshot

ALL_ORDERS = list(itertools.product(itertools.permutations(range(3)),
                                    itertools.product((False, True),
                                                      repeat=3)))


def test_reorientation_of_all_48_axis_orders_keeps_world_positions():
    rng = np.random.default_rng(0)
    base = np.diag([1.5, 0.8, 3.0, 1.0])
    base[:3, 3] = (10, -20, 5)
    data = rng.random((4, 5, 6))
    for (perm, flips), target in itertools.product(ALL_ORDERS,
                                                   ('RAS', 'IPR', 'LPS')):
        stored, affine = restore(data, base, perm, flips)
        r = reorientation(affine, stored.shape, target)
        out = r.apply(stored)
        # the same array and affine as reorienting the original
        r0 = reorientation(base, data.shape, target)
        np.testing.assert_array_equal(out, r0.apply(data))
        np.testing.assert_allclose(r.affine(affine), r0.affine(base))
        assert orientation_of(r.affine(affine)) == tuple(target)
        assert out.shape == r.target_shape
        np.testing.assert_allclose(
            r.spacing((1.5, 0.8, 3.0)) if not any(flips) and perm == (
                0, 1, 2) else r.spacing(np.sqrt((affine[:3, :3]**2).sum(0))),
            np.sqrt((r.affine(affine)[:3, :3]**2).sum(0)))
        # undo, also with a trailing class axis
        np.testing.assert_array_equal(r.undo(out), stored)
        probs = np.stack([stored, 1 - stored], -1)
        np.testing.assert_array_equal(r.undo(r.apply(probs)), probs)


def test_identity_reorientation_returns_the_array_itself():
    data = np.zeros((3, 4, 5))
    r = reorientation(np.eye(4), data.shape, 'RAS')
    assert r.is_identity and r.apply(data) is data and r.undo(data) is data


def test_axcodes_are_checked():
    assert check_axcodes('ipr') == ('I', 'P', 'R')
    for bad in ('RAX', 'RRS', 'RA', 'RLS'):
        with pytest.raises(DatasetFormatError, match='not an orientation'):
            check_axcodes(bad)


def test_match_grid_accepts_a_mask_stored_in_another_axis_order():
    affine = np.diag([0.7, 0.7, 3.3, 1.0])
    affine[:3, 3] = (-40, 12, 3)
    mask = np.random.default_rng(1).integers(0, 4, (8, 6, 5))
    for perm, flips in ALL_ORDERS:
        stored, stored_affine = restore(mask, affine, perm, flips)
        to_image = match_grid(stored_affine, stored.shape, affine, mask.shape)
        assert to_image is not None
        np.testing.assert_array_equal(to_image.apply(stored), mask)
    # a shifted origin (half a voxel), other spacing or a transposed array
    # with the header left as it was are not the same grid
    shifted = affine.copy()
    shifted[0, 3] += 0.35
    assert match_grid(shifted, mask.shape, affine, mask.shape) is None
    assert match_grid(affine @ np.diag([1, 1, 1.1, 1]), mask.shape, affine,
                      mask.shape) is None
    assert match_grid(affine, (6, 8, 5), affine, mask.shape) is None
    # float32 round-off of a stored header is tolerated
    assert match_grid(affine.astype(np.float32).astype(float) + 1e-5,
                      mask.shape, affine, mask.shape) is not None


def _restore_case(src, case, perm, flips, what=('image', 'label')):
    """Rewrite one case of a raw nnU-Net folder in another axis order."""
    files = dict(image=src / 'imagesTr' / f'{case}_0000.nii.gz',
                 label=src / 'labelsTr' / f'{case}.nii.gz')
    for key in what:
        img = nib.load(str(files[key]))
        data, affine = restore(np.asanyarray(img.dataobj), img.affine, perm,
                               flips)
        nib.Nifti1Image(data, affine).to_filename(str(files[key]))


def _slices(out):
    return {k: v for k, v in snapshot(out).items() if k.endswith('.png')}


def test_cases_in_mixed_axis_orders_convert_like_the_canonical_dataset(
        tmp_path):
    src = tmp_path / 'raw'
    make_nnunet(src, n=4)
    reference = convert_dataset(src, tmp_path / 'ref', 'nnunet',
                                splits=False)
    ref_meta = json.loads((reference / 'meta.json').read_text())
    assert ref_meta['orientation'] == 'RAS'
    case = ref_meta['cases']['case_000']
    assert case['source_affine'] == case['affine']
    assert case['source_orientation'] == 'RAS'

    # three cases rewritten in other axis orders (image and mask alike)
    _restore_case(src, 'case_001', (2, 0, 1), (False, True, False))
    _restore_case(src, 'case_002', (0, 1, 2), (True, True, True))
    _restore_case(src, 'case_003', (1, 2, 0), (False, False, True))
    mixed = convert_dataset(src, tmp_path / 'mixed', 'nnunet', splits=False)
    meta = json.loads((mixed / 'meta.json').read_text())
    # the majority order wins, the slice axis is found from the reoriented
    # spacing, and every PNG slice equals the canonical conversion's
    assert meta['orientation'] == 'RAS' and meta['slice_axis'] == 2
    assert _slices(mixed) == _slices(reference)
    for case_id, entry in meta['cases'].items():
        np.testing.assert_allclose(entry['affine'],
                                   ref_meta['cases'][case_id]['affine'])
        assert entry['shape'] == ref_meta['cases'][case_id]['shape']
        stored = nib.load(str(src / 'imagesTr' / f'{case_id}_0000.nii.gz'))
        np.testing.assert_allclose(entry['source_affine'], stored.affine)
    assert meta['cases']['case_001']['source_orientation'] == 'SLA'
    assert dataset_orientation(meta) == 'RAS'
    # old meta.json without the key: read off the case affines
    del meta['orientation']
    assert dataset_orientation(meta) == 'RAS'


def test_dataset_json_orientation_is_used_and_checked(tmp_path):
    src = tmp_path / 'raw'
    make_nnunet(src, n=3, orientation='LPI')
    out = convert_dataset(src, tmp_path / 'out', 'nnunet', splits=False)
    meta = json.loads((out / 'meta.json').read_text())
    assert meta['orientation'] == 'LPI'
    assert orientation_of(np.array(
        meta['cases']['case_000']['affine'])) == ('L', 'P', 'I')
    (src / 'dataset.json').write_text(json.dumps(
        dict(name='tiny', labels={'background': 0, 'disc': 2,
                                  'vertebra': 5}, orientation='LPX')))
    with pytest.raises(DatasetFormatError,
                       match="dataset.json orientation: 'LPX' is not"):
        convert_dataset(src, tmp_path / 'bad', 'nnunet', splits=False)


def test_a_mask_stored_flipped_gets_its_labels_on_the_right_voxels(
        tmp_path):
    src = tmp_path / 'raw'
    make_nnunet(src, n=3)
    reference = convert_dataset(src, tmp_path / 'ref', 'nnunet',
                                splits=False)
    # only the mask is stored with axis 0 reversed (header adjusted)
    _restore_case(src, 'case_001', (0, 1, 2), (True, False, False),
                  what=('label', ))
    out = convert_dataset(src, tmp_path / 'out', 'nnunet', splits=False)
    assert _slices(out) == _slices(reference)


def test_a_mask_off_the_image_grid_is_refused(tmp_path):
    src = tmp_path / 'raw'
    make_nnunet(src, n=3)
    out = convert_dataset(src, tmp_path / 'out', 'nnunet', splits=False)
    before = snapshot(out)
    path = src / 'labelsTr' / 'case_002.nii.gz'
    img = nib.load(str(path))
    affine = img.affine.copy()
    affine[2, 3] += 6.0  # two slices off along the 3 mm axis
    nib.Nifti1Image(np.asanyarray(img.dataobj), affine).to_filename(str(path))
    with pytest.raises(DatasetFormatError,
                       match=r'labelsTr/case_002\.nii\.gz: mask geometry '
                       r'differs from image imagesTr/case_002_0000\.nii\.gz'
                       r'.*origin .* Resample the mask'):
        convert_dataset(src, out, 'nnunet', overwrite=True, splits=False)
    assert snapshot(out) == before


def test_cli_orientation_option(tmp_path):
    import importlib.util
    from test_converters import REPO
    spec = importlib.util.spec_from_file_location(
        'nnunet_cli', REPO / 'tools' / 'dataset_converters' / 'nnunet.py')
    cli = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(cli)
    src = tmp_path / 'raw'
    make_nnunet(src, n=2)
    out = tmp_path / 'out'
    assert cli.main([str(src), str(out), '--orientation', 'PSL',
                     '--no-splits']) == 0
    meta = json.loads((out / 'meta.json').read_text())
    assert meta['orientation'] == 'PSL'
    # z (3 mm) is now axis 1 of PSL and is found as the slice axis
    assert meta['slice_axis'] == 1
    assert cli.main([str(src), str(tmp_path / 'bad'), '--orientation',
                     'XYZ']) == 1
    assert not (tmp_path / 'bad').exists()
