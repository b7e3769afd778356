"""Tests of the case-level splits (cps4.datasets.splits)."""
import importlib.util
import json
import math
import re
from pathlib import Path

import pytest

from cps4.datasets.splits import (format_pct, load_split, make_split,
                                  split_filename, write_split, write_splits)
from cps4.utils.fileio import DatasetFormatError

SUBSETS = ('labelled', 'unlabelled', 'val', 'test')
CASES = [f'case_{i:02d}' for i in range(40)]
RATIOS = (0.01, 0.05, 0.1, 0.25, 0.5, 1.0)


def _all_ids(split):
    return [c for k in SUBSETS for c in split[k]]


@pytest.mark.parametrize('seed', [0, 1, 2])
@pytest.mark.parametrize('ratio', RATIOS)
def test_partition(seed, ratio):
    split = make_split(CASES, ratio, seed)
    ids = _all_ids(split)
    assert len(ids) == len(set(ids)), 'a case is in two subsets'
    assert sorted(ids) == CASES
    assert all(split[k] == sorted(split[k]) for k in SUBSETS)
    assert len(split['test']) == 8 and len(split['val']) == 4
    assert len(split['labelled']) == max(1, round(ratio * 28))
    assert split['seed'] == seed and split['label_ratio'] == ratio


def test_determinism_and_seed_dependence():
    a = make_split(CASES, 0.25, seed=0)
    assert make_split(list(reversed(CASES)), 0.25, seed=0) == a
    b = make_split(CASES, 0.25, seed=1)
    assert a['test'] != b['test'] and a['labelled'] != b['labelled']


@pytest.mark.parametrize('seed', [0, 1, 7])
def test_val_test_fixed_and_labelled_nested(seed):
    splits = [make_split(CASES, r, seed) for r in RATIOS]
    for s in splits[1:]:
        assert s['val'] == splits[0]['val']
        assert s['test'] == splits[0]['test']
    for small, large in zip(splits, splits[1:]):
        assert set(small['labelled']) <= set(large['labelled'])
        assert set(large['unlabelled']) <= set(small['unlabelled'])
    assert splits[-1]['unlabelled'] == []


def test_rounding_keeps_one_labelled_case():
    split = make_split(CASES[:10], 0.01, seed=0)  # 0.01 * 7 rounds to 0
    assert len(split['labelled']) == 1
    # half-up rounding: 0.5 * 7 = 3.5 -> 4
    assert len(make_split(CASES[:10], 0.5, seed=0)['labelled']) == 4


@pytest.mark.parametrize('n, n_val, n_test, n_pool', [(1, 0, 0, 1),
                                                      (2, 0, 0, 2),
                                                      (3, 1, 1, 1),
                                                      (4, 1, 1, 2),
                                                      (10, 1, 2, 7)])
def test_tiny_datasets(n, n_val, n_test, n_pool):
    split = make_split(CASES[:n], 0.05, seed=3)
    assert len(split['val']) == n_val and len(split['test']) == n_test
    assert len(split['labelled']) == 1
    assert len(split['labelled']) + len(split['unlabelled']) == n_pool
    assert sorted(_all_ids(split)) == CASES[:n]


def test_large_fractions_keep_a_training_case():
    split = make_split(CASES[:3], 1.0, 0, val_fraction=0.45,
                       test_fraction=0.5)
    assert len(split['labelled']) == 1
    assert len(split['val']) == 1 and len(split['test']) == 1
    split = make_split(CASES[:5], 1.0, 0, val_fraction=0.0)
    assert split['val'] == [] and len(split['test']) == 1


@pytest.mark.parametrize('ratio', [0, -0.1, 1.5, math.nan, True, '0.5'])
def test_bad_ratio(ratio):
    expected = r'label_ratio must be .*\(0, 1\], got ' + re.escape(repr(ratio))
    with pytest.raises(ValueError, match=expected):
        make_split(CASES, ratio, seed=0)


def test_bad_case_lists_and_arguments():
    with pytest.raises(ValueError, match='empty'):
        make_split([], 0.5, 0)
    with pytest.raises(ValueError, match=r"duplicate case ids \['b'\]"):
        make_split(['a', 'b', 'c', 'b'], 0.5, 0)
    with pytest.raises(ValueError, match='seed must be'):
        make_split(CASES, 0.5, -1)
    with pytest.raises(ValueError, match='must be < 1'):
        make_split(CASES, 0.5, 0, val_fraction=0.5, test_fraction=0.5)
    with pytest.raises(ValueError, match=r"\['a'\] are both"):
        make_split(['a', 'b'], 0.5, 0, unlabelled_only=['a'])


def test_unlabelled_only_cases():
    split = make_split(CASES[:10], 1.0, 0, unlabelled_only=['u1', 'u0'])
    assert split['unlabelled'] == ['u0', 'u1']
    assert make_split(CASES[:10], 1.0, 0)['test'] == split['test']


@pytest.mark.parametrize('seed', [0, 1, 2])
def test_labelled_cases_nested_and_matching_ratios(seed):
    # 40 cases: 8 test, 4 val, a pool of 28
    by_cases = [make_split(CASES, None, seed, n_labelled=n)
                for n in (1, 2, 4, 8)]
    for n, split in zip((1, 2, 4, 8), by_cases):
        assert len(split['labelled']) == n == split['n_labelled']
        assert split['label_ratio'] == n / 28
        assert sorted(_all_ids(split)) == CASES
        assert split['val'] == by_cases[0]['val']
        assert split['test'] == by_cases[0]['test']
    for small, large in zip(by_cases, by_cases[1:]):
        assert set(small['labelled']) < set(large['labelled'])
    # the same draw as the ratio that asks for as many cases
    assert by_cases[2]['labelled'] == make_split(CASES, 4 / 28,
                                                 seed)['labelled']


def test_labelled_cases_errors():
    with pytest.raises(ValueError, match='either label_ratio or n_labelled'):
        make_split(CASES, 0.1, 0, n_labelled=2)
    with pytest.raises(ValueError, match='either label_ratio or n_labelled'):
        make_split(CASES, None, 0)
    with pytest.raises(ValueError, match='positive integer, got 0'):
        make_split(CASES, None, 0, n_labelled=0)
    with pytest.raises(ValueError, match='29 labelled cases asked for, but '
                       'the training pool of seed 0 holds 28'):
        make_split(CASES, None, 0, n_labelled=29)


def test_empty_label_maps_are_never_drawn_as_labelled():
    pool = make_split(CASES[:10], None, 2, n_labelled=7)['labelled']
    first = make_split(CASES[:10], None, 2, n_labelled=1)['labelled']
    # the case drawn first has an empty map: the next one is drawn instead
    split = make_split(CASES[:10], None, 2, n_labelled=1, empty_cases=first)
    assert split['labelled'] != first and split['labelled'][0] in pool
    assert first[0] in split['unlabelled']
    by_ratio = make_split(CASES[:10], 0.05, 2, empty_cases=first)
    assert by_ratio['labelled'] == split['labelled']
    with pytest.raises(ValueError, match='only cases with empty label maps'):
        make_split(CASES[:10], 1.0, 2, empty_cases=pool)
    with pytest.raises(ValueError, match='holds 6 cases with foreground'):
        make_split(CASES[:10], None, 2, n_labelled=7, empty_cases=first)


def test_file_names():
    assert format_pct(0.05) == '5'
    assert format_pct(1.0) == '100'
    assert format_pct(0.1) == '10'
    assert format_pct(0.025) == '2.5'
    assert format_pct(0.001) == '0.1'
    assert split_filename(2, 0.25) == 'seed2_25pct.json'
    assert split_filename(0, 0.025) == 'seed0_2.5pct.json'
    assert split_filename(0, n_labelled=1) == 'seed0_1case.json'
    assert split_filename(3, 0.2, n_labelled=4) == 'seed3_4cases.json'


def test_write_and_load(tmp_path):
    split = make_split(CASES, 0.05, seed=1)
    path = write_split(tmp_path, split)
    assert path == tmp_path / 'splits' / 'seed1_5pct.json'
    assert load_split(path) == split
    assert sorted(p.name for p in path.parent.iterdir()) == [path.name]
    assert write_split(tmp_path, split) == path  # identical: no-op
    other = make_split(CASES, 0.05, seed=1, test_fraction=0.3)
    with pytest.raises(FileExistsError, match='overwrite'):
        write_split(tmp_path, other)
    assert load_split(path) == split
    write_split(tmp_path, other, overwrite=True)
    assert load_split(path) == other


def test_load_split_validation(tmp_path):
    split = make_split(CASES, 0.25, seed=0)
    bad = dict(split, val=split['val'] + [split['test'][0]])
    path = tmp_path / 'bad.json'
    path.write_text(json.dumps(bad))
    with pytest.raises(DatasetFormatError,
                       match=f"case '{split['test'][0]}' is in both"):
        load_split(path)
    path.write_text(json.dumps({k: v for k, v in split.items()
                                if k != 'test'}))
    with pytest.raises(DatasetFormatError, match=r"keys \['test'\] missing"):
        load_split(path)
    path.write_text(json.dumps(dict(split, label_ratio=2)))
    with pytest.raises(DatasetFormatError, match='got 2'):
        load_split(path)
    path.write_text(json.dumps(split))
    with pytest.raises(DatasetFormatError, match=r"\['zz'\] are in no"):
        load_split(path, case_ids=CASES + ['zz'])


def _fake_converted(root, labelled, unlabelled=(), empty=()):
    root.mkdir()
    cases = {c: {'label': f'labelsTr/{c}.nii.gz',
                 'foreground_voxels': 0 if c in empty else 10}
             for c in labelled}
    cases.update({c: {'label': None} for c in unlabelled})
    (root / 'meta.json').write_text(json.dumps({'cases': cases}))
    return root


def test_write_splits_from_meta(tmp_path):
    out = _fake_converted(tmp_path / 'out', CASES[:12], ['u0'])
    paths = write_splits(out, seeds=(0, 1), label_ratios=(0.1, 0.025))
    assert sorted(p.name for p in paths) == [
        'seed0_10pct.json', 'seed0_2.5pct.json', 'seed1_10pct.json',
        'seed1_2.5pct.json'
    ]
    split = load_split(out / 'splits' / 'seed1_10pct.json')  # vs meta.json
    assert 'u0' in split['unlabelled']
    # a split that puts a case without ground truth in test is refused
    bad = dict(split, test=sorted(split['test'] + ['u0']),
               unlabelled=[c for c in split['unlabelled'] if c != 'u0'])
    (out / 'splits' / 'seed1_10pct.json').write_text(json.dumps(bad))
    with pytest.raises(DatasetFormatError, match=r"\['u0'\] have no ground"):
        load_split(out / 'splits' / 'seed1_10pct.json')
    with pytest.raises(ValueError, match='got 0'):
        write_splits(out, label_ratios=(0.5, 0))
    empty = _fake_converted(tmp_path / 'empty', [])
    with pytest.raises(ValueError, match='no case with ground truth'):
        write_splits(empty)


def test_write_splits_in_cases_skips_empty_maps(tmp_path):
    first = make_split(CASES[:12], None, 0, n_labelled=1)['labelled']
    out = _fake_converted(tmp_path / 'out', CASES[:12], empty=first)
    paths = write_splits(out, seeds=(0,), label_ratios=(1.0,),
                         labelled_cases=(1, 2))
    assert [p.name for p in paths] == [
        'seed0_100pct.json', 'seed0_1case.json', 'seed0_2cases.json']
    for path in paths:
        split = load_split(path)
        assert first[0] not in split['labelled']
        assert first[0] in split['unlabelled']
    assert load_split(paths[1])['n_labelled'] == 1


def test_make_splits_cli(tmp_path, monkeypatch):
    out = _fake_converted(tmp_path / 'out', CASES[:6])
    tool = Path(__file__).parents[2] / 'tools' / 'dataset_converters'
    # the script imports its shared options from its own folder
    monkeypatch.syspath_prepend(str(tool))
    spec = importlib.util.spec_from_file_location('make_splits_cli',
                                                  tool / 'make_splits.py')
    cli = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(cli)
    assert cli.main([str(out), '--seeds', '3', '--ratios', '0.5', '1']) == 0
    assert sorted(p.name for p in (out / 'splits').iterdir()) == [
        'seed3_100pct.json', 'seed3_50pct.json'
    ]
    assert cli.main([str(out), '--ratios', '1.5']) == 1
    assert cli.main([str(out), '--seeds', '3', '--ratios', '1',
                     '--labelled-cases', '2']) == 0
    assert (out / 'splits' / 'seed3_2cases.json').is_file()
    assert cli.main([str(out), '--labelled-cases', '0']) == 1
