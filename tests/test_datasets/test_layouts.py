"""Tests of the registered raw dataset layouts (converters/layouts)."""
import numpy as np
import pytest

from cps4.datasets.converters import (DATASET_LAYOUTS, LAYOUTS, BaseLayout,
                                      MRSpineSegLayout, NnUNetLayout,
                                      Png2DLayout, SpiderLayout,
                                      build_layout, convert_dataset,
                                      read_meta)
from cps4.datasets.converters.layouts import check_case_files, select_cases

from test_converters import make_nnunet, snapshot


def test_registry_and_order():
    assert LAYOUTS == ('nnunet', 'mrspineseg', 'spider', 'png2d')
    assert DATASET_LAYOUTS.get('spider') is SpiderLayout
    for name, cls in zip(LAYOUTS, (NnUNetLayout, MRSpineSegLayout,
                                   SpiderLayout, Png2DLayout)):
        assert issubclass(cls, BaseLayout) and cls.name == name


def test_build_layout_arguments():
    spider = build_layout('spider', classes='a,b', sequence='t1',
                          label_map={1: 'b'})
    assert (spider.classes, spider.sequence, spider.label_map) == (
        'a,b', 't1', {1: 'b'})
    # None options keep the layout's defaults
    assert build_layout('spider', sequence=None).sequence == 't2'
    nnunet = NnUNetLayout(classes=['bg', 'x'])
    assert build_layout(nnunet, classes='ignored') is nnunet
    with pytest.raises(ValueError, match=r"unknown layout 'nifti'"):
        build_layout('nifti')
    with pytest.raises(ValueError,
                       match=r"sequence is only supported for the spider "
                       r"layout, not 'png2d'"):
        build_layout('png2d', sequence='t1')


def test_find_cases_select_and_check(tmp_path):
    make_nnunet(tmp_path / 'raw', n=3)
    (tmp_path / 'raw' / 'labelsTr' / 'case_002.nii.gz').unlink()
    layout = NnUNetLayout()
    dataset = layout.find_cases(tmp_path / 'raw')
    assert dataset.layout == 'nnunet' and dataset.classes.names == [
        'background', 'disc', 'vertebra'
    ]
    assert [c.case_id for c in dataset.cases] == [
        'case_000', 'case_001', 'case_002'
    ]
    with pytest.raises(FileNotFoundError, match='case_002.nii.gz'):
        check_case_files(dataset)
    check_case_files(dataset, allow_unlabelled=True)
    assert dataset.cases[2].label is None
    with pytest.raises(ValueError, match=r"cases \['case_009'\] not found"):
        select_cases(dataset, ['case_009'])
    select_cases(dataset, ['case_001'])
    assert [c.case_id for c in dataset.cases] == ['case_001']
    image, label, spacing, affine = layout.read_case(dataset,
                                                     dataset.cases[0])
    assert image.dtype == np.float32 and image.shape == label.shape
    assert spacing == pytest.approx((1.0, 1.0, 3.0))
    assert layout.resolve_slice_axis(dataset) == 2  # largest spacing


def test_convert_with_a_layout_object(tmp_path):
    make_nnunet(tmp_path / 'raw', n=3)
    by_name = convert_dataset(tmp_path / 'raw', tmp_path / 'a', 'nnunet',
                              classes='bg,d,v', splits=False)
    by_object = convert_dataset(tmp_path / 'raw', tmp_path / 'b',
                                NnUNetLayout(classes='bg,d,v'),
                                splits=False)
    assert snapshot(by_name) == snapshot(by_object)
    assert read_meta(by_object)['classes'] == ['bg', 'd', 'v']
    assert read_meta(by_object)['layout'] == 'nnunet'
