import json
import shutil
from pathlib import Path

import pytest
from mmengine.registry import init_default_scope

from cps4.datasets import SpineSliceDataset

META_KEYS = ('img_path', 'case_id', 'slice_idx', 'n_slices', 'spacing')
PIPELINE = [
    dict(type='LoadImageFromFile', color_type='grayscale'),
    dict(type='LoadAnnotations'),
    dict(type='PackSegInputs', meta_keys=META_KEYS),
]


@pytest.fixture(autouse=True)
def _scope():
    init_default_scope('mmseg')


def test_slices_of_split_cases_with_volume_metainfo(tiny_spine_root):
    meta = json.loads((tiny_spine_root / 'meta.json').read_text())
    split = json.loads(
        (tiny_spine_root / 'splits/seed0_100pct.json').read_text())
    ds = SpineSliceDataset(
        data_root=str(tiny_spine_root), split='splits/seed0_100pct.json',
        subset='test', pipeline=PIPELINE)
    assert ds.metainfo['classes'] == tuple(meta['classes'])
    assert len(ds.metainfo['classes']) == 20
    expected = sum(meta['cases'][c]['n_slices'] for c in split['test'])
    assert len(ds) == expected
    assert {ds[i]['data_samples'].case_id for i in range(len(ds))} == set(
        split['test'])
    sample = ds[0]['data_samples']
    case = meta['cases'][sample.case_id]
    assert sample.n_slices == case['n_slices']
    assert sample.spacing == pytest.approx(case['spacing'])  # axis 2 last
    assert sample.gt_sem_seg.data.shape[-2:] == tuple(case['shape'][:2])


def test_skip_empty_drops_background_only_slices(tiny_spine_root):
    kwargs = dict(data_root=str(tiny_spine_root),
                  split='splits/seed0_100pct.json', subset='labelled',
                  pipeline=PIPELINE)
    full = SpineSliceDataset(**kwargs)
    kept = SpineSliceDataset(skip_empty=True, **kwargs)
    assert 0 < len(kept) <= len(full)
    for i in range(len(kept)):
        seg = kept[i]['data_samples'].gt_sem_seg.data
        assert int(seg.max()) > 0


def test_unlabelled_subset_without_labels(tiny_spine_root):
    ds = SpineSliceDataset(
        data_root=str(tiny_spine_root), split='splits/seed0_5pct.json',
        subset='unlabelled', with_label=False, pipeline=PIPELINE[:1] + [
            dict(type='PackSegInputs', meta_keys=META_KEYS)])
    assert all('seg_map_path' not in d for d in ds.data_list)
    assert len(ds) > 0


def test_missing_meta_names_the_converter(tmp_path):
    with pytest.raises(FileNotFoundError, match='dataset_converters'):
        SpineSliceDataset(data_root=str(tmp_path), split='x.json')


def test_missing_split_file(tiny_spine_root):
    with pytest.raises(FileNotFoundError, match='make_splits.py'):
        SpineSliceDataset(data_root=str(tiny_spine_root),
                          split='splits/seed9_5pct.json')


def test_unknown_subset(tiny_spine_root):
    with pytest.raises(ValueError, match="unknown subset"):
        SpineSliceDataset(data_root=str(tiny_spine_root),
                          split='splits/seed0_5pct.json', subset='train')


def test_empty_split_subset(tiny_spine_root, tmp_path):
    root = tmp_path / 'copy'
    shutil.copytree(tiny_spine_root, root)
    split = json.loads((root / 'splits/seed0_5pct.json').read_text())
    split['unlabelled'] = sorted(split['unlabelled'] + split['val'])
    split['val'] = []
    (root / 'splits/empty_val.json').write_text(json.dumps(split))
    with pytest.raises(ValueError, match='hold no case'):
        SpineSliceDataset(data_root=str(root), split='splits/empty_val.json',
                          subset='val')
    # nothing already written was touched
    assert (root / 'splits/seed0_5pct.json').read_text() == (
        tiny_spine_root / 'splits/seed0_5pct.json').read_text()


def test_num_class_check_hook_rejects_mismatch(tiny_spine_root, tmp_path):
    from mmengine.config import Config
    from mmengine.runner import Runner

    repo = Path(__file__).resolve().parents[2]
    cfg = Config.fromfile(
        repo / 'configs/supervised/sup_unet-s5-d16-fcn_1xb8-2k_vb-100pct-224px.py')
    for key in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        cfg[key].dataset.data_root = str(tiny_spine_root)
        cfg[key].num_workers = 0
        cfg[key].persistent_workers = False
    cfg.work_dir = str(tmp_path)
    runner = Runner.from_cfg(cfg)
    with pytest.raises(ValueError, match=r'num_classes = 6 .* 20 classes'):
        runner.test()
