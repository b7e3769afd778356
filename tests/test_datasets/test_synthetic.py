# Copyright (c) CPS4 contributors. All rights reserved.
import json
import os
import subprocess
import sys
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from scipy import ndimage

from cps4.datasets.synthetic import (SPINE_CLASSES, SPINE_PALETTE,
                                     CaseParams, generate_case,
                                     sample_anatomy, sample_appearance,
                                     write_synthetic_dataset)
from cps4.datasets.synthetic.writer import GENERATOR_ID, _is_complete

REPO_ROOT = Path(__file__).resolve().parents[2]
NUM_CASES = 8
VERTEBRAE = range(1, 11)  # S, L5 ... T9
DISCS = range(11, 20)  # L5/S ... T9/T10


@pytest.fixture(scope='module')
def cases():
    return [generate_case((0, i)) for i in range(NUM_CASES)]


def _uncut_units(label):
    """Labels present in ``label`` that do not touch the top row."""
    present = set(np.unique(label).tolist()) - {0}
    return sorted(present - set(np.unique(label[0]).tolist()))


def test_classes_and_palette():
    assert len(SPINE_CLASSES) == 20
    assert SPINE_CLASSES[0] == 'background'
    assert SPINE_CLASSES[1:11] == ('S', 'L5', 'L4', 'L3', 'L2', 'L1', 'T12',
                                   'T11', 'T10', 'T9')
    assert SPINE_CLASSES[11] == 'L5/S' and SPINE_CLASSES[19] == 'T9/T10'
    assert len(SPINE_PALETTE) == 20
    assert SPINE_PALETTE[0] == [0, 0, 0]
    assert len({tuple(c) for c in SPINE_PALETTE}) == 20
    assert all(
        len(c) == 3 and all(0 <= v <= 255 for v in c) for c in SPINE_PALETTE)


def test_determinism(cases):
    image, label, spacing = cases[0]
    image2, label2, spacing2 = generate_case((0, 0))
    assert image.tobytes() == image2.tobytes()
    assert label.tobytes() == label2.tobytes()
    assert spacing == spacing2
    # a Generator seeded the same way gives the same case
    image3, _, _ = generate_case(np.random.default_rng((0, 0)))
    assert image.tobytes() == image3.tobytes()
    # different case index -> different case
    image1, label1, spacing1 = cases[1]
    assert spacing1 != spacing or image1.shape != image.shape or \
        not np.array_equal(image1, image)
    # different seed -> different case
    other, _, _ = generate_case((1, 0))
    assert other.shape != image.shape or not np.array_equal(other, image)


def test_shapes_dtypes_spacing(cases):
    num_slices = set()
    spacings = set()
    for image, label, spacing in cases:
        assert image.dtype == np.float32 and label.dtype == np.uint8
        assert image.ndim == 3 and image.shape == label.shape
        assert image.shape[:2] == (192, 192)
        assert 9 <= image.shape[2] <= 17
        num_slices.add(image.shape[2])
        assert np.isfinite(image).all() and image.min() >= 0
        assert 400 < np.percentile(image, 99.5) < 1100
        assert len(spacing) == 3 and all(isinstance(v, float) for v in spacing)
        sy, sx, sz = spacing
        assert sy == pytest.approx(sx)
        # field of view from the sacrum to T11-T8: roughly 200-400 mm
        assert 200 < sy * image.shape[0] < 400
        assert 3.0 <= sz <= 4.5
        spacings.add(spacing)
        assert label.max() <= 19
    assert len(num_slices) > 1 and len(spacings) == len(cases)

    image, label, spacing = generate_case(
        3, (96, 64), num_slices=5, slice_spacing=4.0)
    assert image.shape == label.shape == (96, 64, 5)
    assert spacing[2] == 4.0
    with pytest.raises(ValueError):
        generate_case(0, (8, 8))


def test_class_presence(cases):
    present = [set(np.unique(label).tolist()) for _, label, _ in cases]
    for k in VERTEBRAE:
        assert any(k in p for p in present), SPINE_CLASSES[k]
    # the lumbar spine and sacrum are always in view
    for p in present:
        assert set(range(0, 7)) | set(range(11, 16)) <= p
    # the top visible unit varies: T9 or T9/T10 is missing in some cases
    assert any(10 not in p or 19 not in p for p in present)
    assert any(10 in p for p in present)


def test_position_encodes_identity(cases):
    rows = np.arange(192, dtype=np.float64)[:, None, None]
    for _, label, _ in cases:
        units = _uncut_units(label)
        centroid = {
            k: float((rows * (label == k)).sum() / (label == k).sum())
            for k in units
        }
        vertebrae = [k for k in VERTEBRAE if k in centroid]
        assert len(vertebrae) >= 7
        # S lowest (largest row), then L5, L4, ... upwards
        for lower, upper in zip(vertebrae[:-1], vertebrae[1:]):
            assert centroid[lower] > centroid[upper], (lower, upper)
        # disc L5/S (11) sits between S (1) and L5 (2), and so on
        for disc in DISCS:
            below, above = disc - 10, disc - 9
            if {disc, below, above} <= set(centroid):
                assert centroid[below] > centroid[disc] > centroid[above]


def test_appearance_is_not_identity(cases):
    level_diffs, contrasts = [], []
    interior, border = [], []
    for image, label, _ in cases:

        def mean(mask):
            return float(image[mask].mean())

        l2, l3, l4 = (mean(label == k) for k in (5, 4, 3))
        level_diffs += [abs(l3 - l4), abs(l3 - l2)]
        vertebra = mean((label >= 2) & (label <= 10))
        disc = mean(label >= 11)
        contrasts.append(disc - vertebra)
        # discs: bright nucleus inside a darker annulus (central slice)
        c = label.shape[2] // 2
        for k in DISCS:
            mask = label[:, :, c] == k
            core = ndimage.binary_erosion(mask, iterations=2)
            if core.sum() >= 4:
                interior.append(image[:, :, c][core].mean())
                border.append(image[:, :, c][mask & ~core].mean())
        # textured marrow, not a flat fill
        body = ndimage.binary_erosion(label[:, :, c] == 4, iterations=2)
        values = image[:, :, c][body]
        assert values.std() > 0.05 * values.mean()
    contrast = float(np.mean(contrasts))
    assert contrast > 30  # T2-like: discs brighter than vertebrae
    assert np.mean(level_diffs) < 0.35 * contrast
    assert np.mean(interior) > np.mean(border)


def test_write_dataset(tmp_path):
    out = tmp_path / 'synthetic'
    ret = write_synthetic_dataset(
        out, num_cases=3, seed=0, image_size=(64, 64), progress=False)
    assert ret == out
    meta = json.loads((out / 'dataset.json').read_text())
    assert meta['name']
    assert meta['channel_names'] == {'0': 'MR'}
    assert list(meta['labels']) == list(SPINE_CLASSES)
    assert list(meta['labels'].values()) == list(range(20))
    assert meta['labels']['L5/S'] == 11
    assert meta['numTraining'] == 3
    assert meta['file_ending'] == '.nii.gz'
    assert meta['slice_axis'] == 2
    assert len(meta['axes']) == 3
    assert meta['palette'] == SPINE_PALETTE
    assert meta['generator']['seed'] == 0
    assert meta['generator']['num_cases'] == 3
    assert meta['generator']['image_size'] == [64, 64]

    files = []
    for i in range(3):
        image_file = out / 'imagesTr' / f'spine_{i:03d}_0000.nii.gz'
        label_file = out / 'labelsTr' / f'spine_{i:03d}.nii.gz'
        image, label, spacing = generate_case((0, i), (64, 64))
        nii_image, nii_label = nib.load(image_file), nib.load(label_file)
        assert nii_image.shape == nii_label.shape == image.shape
        np.testing.assert_allclose(
            np.diag(nii_image.affine)[:3], spacing, rtol=1e-6)
        np.testing.assert_allclose(nii_label.affine, nii_image.affine)
        np.testing.assert_allclose(
            nii_image.header.get_zooms(), spacing, rtol=1e-6)
        np.testing.assert_array_equal(np.asanyarray(nii_label.dataobj), label)
        assert np.asanyarray(nii_label.dataobj).dtype == np.uint8
        stored = np.asanyarray(nii_image.dataobj)
        assert stored.dtype == np.int16
        np.testing.assert_array_equal(stored, np.rint(image))
        files += [image_file, label_file]
    files.append(out / 'dataset.json')
    # no temporary files are left behind
    assert not [p for p in out.rglob('.*')]

    # a complete dataset with the same parameters is not regenerated
    stats = {p: os.stat(p) for p in files}
    write_synthetic_dataset(
        out, num_cases=3, seed=0, image_size=(64, 64), progress=False)
    for p in files:
        now = os.stat(p)
        assert (now.st_mtime_ns, now.st_ino) == (stats[p].st_mtime_ns,
                                                 stats[p].st_ino)
    # overwrite=True regenerates the files
    write_synthetic_dataset(
        out,
        num_cases=3,
        seed=0,
        image_size=(64, 64),
        overwrite=True,
        progress=False)
    assert os.stat(files[0]).st_ino != stats[files[0]].st_ino
    # other parameters regenerate as well
    write_synthetic_dataset(
        out, num_cases=2, seed=0, image_size=(64, 64), progress=False)
    meta = json.loads((out / 'dataset.json').read_text())
    assert meta['numTraining'] == 2


def test_workers_write_the_same_files(tmp_path):
    one, two = tmp_path / 'one', tmp_path / 'two'
    write_synthetic_dataset(one, num_cases=3, image_size=(48, 48),
                            progress=False)
    write_synthetic_dataset(two, num_cases=3, image_size=(48, 48),
                            progress=False, workers=2)
    names = sorted(p.relative_to(one) for p in one.rglob('*') if p.is_file())
    assert len(names) == 7  # 3 images, 3 labels, dataset.json
    assert names == sorted(p.relative_to(two) for p in two.rglob('*')
                           if p.is_file())
    for name in names:
        if name.suffix == '.gz':
            a, b = nib.load(one / name), nib.load(two / name)
            np.testing.assert_array_equal(a.dataobj, b.dataobj)
            np.testing.assert_array_equal(a.affine, b.affine)
    assert (json.loads((one / 'dataset.json').read_text())['training'] ==
            json.loads((two / 'dataset.json').read_text())['training'])


def test_interrupted_write_leaves_no_file(tmp_path, monkeypatch):

    def broken_save(img, filename):
        Path(filename).write_bytes(b'partial')
        raise KeyboardInterrupt

    monkeypatch.setattr(nib, 'save', broken_save)
    with pytest.raises(KeyboardInterrupt):
        write_synthetic_dataset(
            tmp_path, num_cases=1, image_size=(32, 32), progress=False)
    assert not list(tmp_path.rglob('*.nii.gz'))
    assert not (tmp_path / 'dataset.json').exists()
    assert not _is_complete(tmp_path, {'num_cases': 1})


def test_cli(tmp_path):
    out = tmp_path / 'cli'
    env = dict(os.environ)
    env['PYTHONPATH'] = os.pathsep.join(
        [str(REPO_ROOT), env.get('PYTHONPATH', '')])
    result = subprocess.run([
        sys.executable,
        str(REPO_ROOT / 'tools' / 'dataset_converters' / 'synthetic.py'),
        str(out), '--num-cases', '2', '--seed', '3', '--size', '48', '40'
    ],
                            env=env,
                            capture_output=True,
                            text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr
    meta = json.loads((out / 'dataset.json').read_text())
    assert meta['numTraining'] == 2
    assert meta['generator']['seed'] == 3
    assert nib.load(out / 'labelsTr' / 'spine_001.nii.gz').shape[:2] == (48,
                                                                         40)


def test_shared_class_table_and_old_module_names():
    from cps4.datasets import synthetic_spine
    from cps4.datasets.spine_classes import (MRSPINESEG_CLASSES,
                                             default_palette)
    assert SPINE_CLASSES == MRSPINESEG_CLASSES
    assert SPINE_PALETTE == default_palette(20)
    assert synthetic_spine.generate_case is generate_case
    assert synthetic_spine.write_synthetic_dataset is write_synthetic_dataset
    assert synthetic_spine.SPINE_CLASSES == SPINE_CLASSES


def test_case_params():
    rng = np.random.default_rng(0)
    params = CaseParams.draw(rng, (64, 48))
    assert params.shape[:2] == (64, 48) and 9 <= params.num_slices <= 17
    assert 3.0 <= params.slice_spacing <= 4.5
    given = CaseParams.draw(rng, (32, 32), num_slices=3, slice_spacing=2.0)
    assert (given.num_slices, given.slice_spacing) == (3, 2.0)
    with pytest.raises(AttributeError):
        given.num_slices = 4  # frozen
    with pytest.raises(ValueError, match='image_size too small'):
        CaseParams.draw(rng, (8, 64))
    with pytest.raises(ValueError, match='num_slices must be positive'):
        CaseParams.draw(rng, (32, 32), num_slices=0)


def test_anatomy_stacking():
    rng = np.random.default_rng(4)
    anatomy = sample_anatomy(rng)
    # discs and bodies alternate upwards from the top of S1 without gaps
    np.testing.assert_allclose(anatomy.disc_lo[0], 0.0)
    np.testing.assert_allclose(anatomy.disc_hi - anatomy.disc_lo,
                               anatomy.disc_height)
    np.testing.assert_allclose(anatomy.center - anatomy.half_height,
                               anatomy.disc_hi)
    np.testing.assert_allclose(anatomy.disc_lo[1:], anatomy.top[:-1])
    # the profiles interpolate the knots: body half depth at body centres
    np.testing.assert_allclose(anatomy.depth_at(anatomy.center),
                               anatomy.half_depth)
    assert np.all(anatomy.canal_back_at(anatomy.center) > anatomy.half_depth)
    appearance = sample_appearance(rng)
    assert appearance.tone['csf'] > appearance.tone['cortex']
    assert appearance.marrow_gain.shape == (len(anatomy.center) + 1, )


def test_dataset_json_generator_id(tmp_path):
    write_synthetic_dataset(
        tmp_path, num_cases=1, image_size=(32, 32), progress=False)
    meta = json.loads((tmp_path / 'dataset.json').read_text())
    assert meta['generator']['module'] == GENERATOR_ID
    assert GENERATOR_ID in meta['description']
    assert _is_complete(tmp_path, meta['generator'])
    image = nib.load(tmp_path / 'imagesTr' / 'spine_000_0000.nii.gz')
    assert image.header.get_xyzt_units()[0] == 'mm'
    assert int(image.header['sform_code']) == 1
