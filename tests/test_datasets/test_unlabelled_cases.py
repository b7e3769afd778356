"""Cases without a mask: converted as unlabelled, kept out of val and test,
served without a label."""
import json
import shutil

import nibabel as nib
import numpy as np
import pytest

from cps4.datasets.converters import DatasetFormatError, convert_dataset

from test_converters import REPO, make_nnunet


@pytest.fixture
def raw(tmp_path):
    src = tmp_path / 'raw'
    make_nnunet(src, n=6)
    (src / 'labelsTr' / 'case_004.nii.gz').unlink()  # image only
    extra = tmp_path / 'extra'
    extra.mkdir()
    image = src / 'imagesTr' / 'case_000_0000.nii.gz'
    shutil.copy(image, extra / 'u1_0000.nii.gz')
    shutil.copy(image, extra / 'u1_0001.nii.gz')  # another channel: skipped
    shutil.copy(image, extra / 'u2.nii.gz')
    return src, extra


def test_unlabelled_cases_go_to_the_unlabelled_pool_only(tmp_path, raw):
    src, extra = raw
    out = convert_dataset(src, tmp_path / 'out', 'nnunet',
                          allow_unlabelled=True, unlabelled=extra,
                          split_seeds=(0, 1, 2), split_ratios=(0.5, 1.0),
                          split_cases=(1, 2))
    meta = json.loads((out / 'meta.json').read_text())
    no_mask = {'case_004', 'u1', 'u2'}
    assert {c for c, e in meta['cases'].items() if e['label'] is None} == (
        no_mask)
    assert not [p for p in (out / 'labels').iterdir()
                if p.name.split('_0')[0] in ('u1', 'u2')]
    splits = sorted((out / 'splits').glob('*.json'))
    assert len(splits) == 12
    for path in splits:
        split = json.loads(path.read_text())
        assert no_mask <= set(split['unlabelled']), path.name
        for subset in ('labelled', 'val', 'test'):
            assert not no_mask & set(split[subset]), (path.name, subset)


def test_samples_without_a_mask_carry_no_label(tmp_path, raw):
    from mmengine.registry import init_default_scope

    import cps4  # noqa: F401 - registers the modules
    from cps4.datasets import SpineSliceDataset
    init_default_scope('mmseg')
    src, extra = raw
    out = convert_dataset(src, tmp_path / 'out', 'nnunet',
                          allow_unlabelled=True, unlabelled=extra,
                          split_seeds=(0, ), split_ratios=(),
                          split_cases=(1, ))
    pipeline = [
        dict(type='LoadImageFromFile', color_type='grayscale'),
        dict(type='LoadHiddenAnnotations'),
        dict(type='RandomFlip', prob=1.0),
        dict(type='PackSegInputs'),
    ]
    ds = SpineSliceDataset(data_root=str(out),
                           split='splits/seed0_1case.json',
                           subset='unlabelled', pipeline=pipeline)
    seen = {}
    for i in range(len(ds)):
        info = ds.get_data_info(i)
        sample = ds[i]['data_samples']
        seen.setdefault(info['case_id'], set()).add('gt_sem_seg' in sample)
    assert seen['u1'] == {False} and seen['u2'] == {False}
    assert seen['case_004'] == {False}
    hidden = [c for c in seen if c not in ('u1', 'u2', 'case_004')]
    assert hidden and all(seen[c] == {True} for c in hidden)


def test_unlabelled_folder_errors_and_cli(tmp_path, raw):
    src, extra = raw
    shutil.copy(src / 'imagesTr' / 'case_001_0000.nii.gz',
                extra / 'case_001.nii.gz')
    with pytest.raises(DatasetFormatError, match="case id 'case_001' is also"):
        convert_dataset(src, tmp_path / 'a', 'nnunet', allow_unlabelled=True,
                        unlabelled=extra, splits=False)
    (extra / 'case_001.nii.gz').unlink()
    with pytest.raises(FileNotFoundError, match='unlabelled folder'):
        convert_dataset(src, tmp_path / 'b', 'nnunet', allow_unlabelled=True,
                        unlabelled=tmp_path / 'nowhere', splits=False)
    import importlib.util
    spec = importlib.util.spec_from_file_location(
        'nnunet_cli', REPO / 'tools' / 'dataset_converters' / 'nnunet.py')
    cli = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(cli)
    assert cli.main([str(src), str(tmp_path / 'c'), '--allow-unlabelled',
                     '--unlabelled', str(extra), '--no-splits']) == 0
    meta = json.loads((tmp_path / 'c' / 'meta.json').read_text())
    assert meta['cases']['u2']['label'] is None
    assert nib.load(str(extra / 'u2.nii.gz')).shape == tuple(
        meta['cases']['u2']['shape'])
    assert np.isfinite(meta['cases']['u2']['spacing']).all()
