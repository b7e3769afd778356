"""Case-level train/val/test splits for semi-supervised experiments.

A split assigns every case of a converted dataset to exactly one of
``labelled``, ``unlabelled``, ``val`` and ``test``. Splits are made per case,
never per slice, so no volume leaks between training and evaluation.

Rules of :func:`make_split`:

* The case ids are sorted, then permuted with ``numpy.random.default_rng(
  seed)``. ``test`` takes the first ``round(test_fraction * n)`` cases of the
  permutation, ``val`` the next ``round(val_fraction * n)``; the rest is the
  training pool. Val and test therefore depend only on the case ids, the seed
  and the fractions, and are identical for every label ratio.
* ``labelled`` is the first ``max(1, round(label_ratio * n_pool))`` cases of
  the pool in permutation order, or the first ``n_labelled`` when the amount
  is given in cases (the way label efficiency is reported: 1, 2, 4, 8
  labelled cases), so the labelled set of a smaller amount is contained in
  that of a larger one (same seed); ``unlabelled`` is the rest of the pool.
  Rounding is half-up.
* Cases whose label map holds no foreground (``empty_cases``, e.g. a 2D
  slice beside the spine) are never drawn as labelled: they are skipped in
  the draw and stay unlabelled, so no split trains on an empty map alone.
* With ``n >= 3`` cases, val and test each get at least one case (when
  their fraction is positive) and the pool keeps at least one. Tiny datasets
  (``n < 3``) get empty val and test: every case is in the pool, which
  guarantees one labelled case but leaves nothing to evaluate on.
* Cases without ground truth (``unlabelled_only``) never enter val, test or
  labelled; they are appended to ``unlabelled``.

Files are written as ``OUT/splits/seed{seed}_{pct}pct.json`` (``pct`` is the
label ratio in percent: ``5``, ``10``, ``100``, ``2.5``) or, for an amount in
cases, ``OUT/splits/seed{seed}_{n}case(s).json`` (``seed0_1case.json``,
``seed0_4cases.json``).
"""
from __future__ import annotations

import math
import numbers
from pathlib import Path
from typing import Dict, Iterable, List, Optional, Sequence

import numpy as np

from cps4.utils.fileio import (DatasetFormatError, PathLike, read_json,
                               write_json_atomic)

#: Seeds of the splits written by default.
DEFAULT_SPLIT_SEEDS = (0, 1, 2)
#: Label ratios of the splits written by default.
DEFAULT_LABEL_RATIOS = (0.01, 0.05, 0.1, 0.25, 1.0)
#: Subsets of a split, in file order.
SPLIT_SUBSETS = ('labelled', 'unlabelled', 'val', 'test')


def _round_half_up(x: float) -> int:
    return int(math.floor(x + 0.5))


def check_label_ratio(label_ratio) -> float:
    """Validate a labelled-data ratio.

    Args:
        label_ratio (float): Fraction of the training pool that is labelled.

    Returns:
        float: The ratio as a float.

    Raises:
        ValueError: The ratio is not a number in (0, 1].
    """
    if (isinstance(label_ratio, bool)
            or not isinstance(label_ratio, numbers.Real)
            or not math.isfinite(float(label_ratio))
            or not 0 < float(label_ratio) <= 1):
        raise ValueError(
            f'label_ratio must be a number in (0, 1], got {label_ratio!r} '
            '(use e.g. 0.05 for 5% labelled cases)')
    return float(label_ratio)


def _check_seed(seed) -> int:
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or (
            seed < 0):
        raise ValueError(f'seed must be a non-negative integer, got {seed!r}')
    return int(seed)


def _check_fraction(name: str, value) -> float:
    if (isinstance(value, bool) or not isinstance(value, numbers.Real)
            or not 0 <= float(value) < 1):
        raise ValueError(f'{name} must be a number in [0, 1), got {value!r}')
    return float(value)


def _check_ids(case_ids: Iterable[str], what: str) -> List[str]:
    ids = list(case_ids)
    bad = [c for c in ids if not isinstance(c, str) or not c]
    if bad:
        raise ValueError(f'{what}: case ids must be non-empty strings, got '
                         f'{bad[:5]}')
    dup = sorted({c for c in ids if ids.count(c) > 1})
    if dup:
        raise ValueError(f'{what}: duplicate case ids {dup}')
    return ids


def format_pct(label_ratio: float) -> str:
    """Format a label ratio as a percentage for file names.

    Args:
        label_ratio (float): Ratio in (0, 1].

    Returns:
        str: ``'5'`` for 0.05, ``'100'`` for 1.0, ``'2.5'`` for 0.025.
    """
    pct = round(check_label_ratio(label_ratio) * 100, 6)
    if pct == int(pct):
        return str(int(pct))
    return f'{pct:.6f}'.rstrip('0').rstrip('.')


def check_n_labelled(n_labelled) -> int:
    """Validate a number of labelled cases (a positive integer)."""
    if (isinstance(n_labelled, bool)
            or not isinstance(n_labelled, numbers.Integral)
            or n_labelled < 1):
        raise ValueError('the number of labelled cases must be a positive '
                         f'integer, got {n_labelled!r}')
    return int(n_labelled)


def label_tag(label_ratio: Optional[float] = None,
              n_labelled: Optional[int] = None) -> str:
    """Name of a labelled amount in file and folder names.

    Args:
        label_ratio (float, optional): Labelled ratio in (0, 1].
        n_labelled (int, optional): Number of labelled cases; takes
            precedence over ``label_ratio``.

    Returns:
        str: ``'5pct'`` for 0.05, ``'1case'`` / ``'4cases'`` for cases.
    """
    if n_labelled is not None:
        n = check_n_labelled(n_labelled)
        return f'{n}case' if n == 1 else f'{n}cases'
    if label_ratio is None:
        raise ValueError('give a label ratio or a number of labelled cases')
    return f'{format_pct(label_ratio)}pct'


def split_filename(seed: int, label_ratio: Optional[float] = None,
                   n_labelled: Optional[int] = None) -> str:
    """File name of a split: ``seed{seed}_{pct}pct.json``, or
    ``seed{seed}_{n}cases.json`` when the amount is given in cases.

    Args:
        seed (int): Split seed.
        label_ratio (float, optional): Labelled ratio in (0, 1].
        n_labelled (int, optional): Number of labelled cases.

    Returns:
        str: The file name.
    """
    return f'seed{_check_seed(seed)}_{label_tag(label_ratio, n_labelled)}.json'


def make_split(case_ids: Sequence[str],
               label_ratio: Optional[float],
               seed: int,
               val_fraction: float = 0.1,
               test_fraction: float = 0.2,
               unlabelled_only: Sequence[str] = (),
               n_labelled: Optional[int] = None,
               empty_cases: Sequence[str] = ()) -> Dict:
    """Split cases into labelled, unlabelled, val and test sets.

    See the module docstring for the rules.

    Args:
        case_ids (Sequence[str]): Cases with ground truth.
        label_ratio (float, optional): Fraction of the training pool that is
            labelled, in (0, 1]; None when ``n_labelled`` is given.
        seed (int): Non-negative seed.
        val_fraction (float): Fraction of all cases used for validation.
            Defaults to 0.1.
        test_fraction (float): Fraction of all cases used for testing.
            Defaults to 0.2.
        unlabelled_only (Sequence[str]): Cases without ground truth, always
            unlabelled. Defaults to ().
        n_labelled (int, optional): Number of labelled cases, instead of
            ``label_ratio``.
        empty_cases (Sequence[str]): Cases of ``case_ids`` whose label map
            has no foreground; never drawn as labelled. Defaults to ().

    Returns:
        dict: ``labelled``, ``unlabelled``, ``val``, ``test`` (sorted lists of
        case ids), ``seed``, ``label_ratio`` (``n_labelled / n_pool`` for an
        amount in cases), ``val_fraction``, ``test_fraction`` and, for an
        amount in cases, ``n_labelled``.

    Raises:
        ValueError: Empty or duplicate case ids, a ratio outside (0, 1], both
            or neither of ``label_ratio`` and ``n_labelled``, more labelled
            cases than the pool can give, a negative seed or fractions that
            leave no training case.
    """
    ids = sorted(_check_ids(case_ids, 'make_split'))
    extra = _check_ids(unlabelled_only, 'make_split unlabelled_only')
    if not ids:
        raise ValueError('make_split: the list of case ids is empty; there is '
                         'nothing to split')
    both = sorted(set(ids) & set(extra))
    if both:
        raise ValueError(f'make_split: cases {both} are both labelled and '
                         'unlabelled_only')
    if (label_ratio is None) == (n_labelled is None):
        raise ValueError('make_split: give either label_ratio or n_labelled, '
                         f'got {label_ratio!r} and {n_labelled!r}')
    if label_ratio is not None:
        label_ratio = check_label_ratio(label_ratio)
    else:
        n_labelled = check_n_labelled(n_labelled)
    empty = set(_check_ids(empty_cases, 'make_split empty_cases'))
    if empty - set(ids):
        raise ValueError(f'make_split: empty_cases {sorted(empty - set(ids))}'
                         ' are not among the case ids')
    seed = _check_seed(seed)
    val_fraction = _check_fraction('val_fraction', val_fraction)
    test_fraction = _check_fraction('test_fraction', test_fraction)
    if val_fraction + test_fraction >= 1:
        raise ValueError(
            f'val_fraction + test_fraction must be < 1, got {val_fraction} + '
            f'{test_fraction}')

    n = len(ids)
    n_test = n_val = 0
    if n >= 3:
        n_test = max(int(test_fraction > 0), _round_half_up(test_fraction * n))
        n_val = max(int(val_fraction > 0), _round_half_up(val_fraction * n))
        while n_test + n_val > n - 1:  # keep one case for training
            if n_val > int(val_fraction > 0) and n_val >= n_test:
                n_val -= 1
            else:
                n_test -= 1
    order = [ids[i] for i in np.random.default_rng(seed).permutation(n)]
    test = order[:n_test]
    val = order[n_test:n_test + n_val]
    pool = order[n_test + n_val:]
    drawable = [c for c in pool if c not in empty]
    if not drawable:
        raise ValueError(
            f'make_split: seed {seed} leaves only cases with empty label maps'
            f' ({sorted(pool)}) in the training pool; nothing can be '
            'labelled')
    extra_fields = {}
    if n_labelled is None:
        k = max(1, _round_half_up(label_ratio * len(pool)))
    else:
        if n_labelled > len(drawable):
            raise ValueError(
                f'make_split: {n_labelled} labelled cases asked for, but the '
                f'training pool of seed {seed} holds {len(drawable)} cases '
                f'with foreground ({n} cases minus {n_val} val and {n_test} '
                'test)')
        k = n_labelled
        label_ratio = k / len(pool)
        extra_fields['n_labelled'] = k
    k = min(k, len(drawable))
    labelled = drawable[:k]
    return dict(
        seed=seed,
        label_ratio=label_ratio,
        **extra_fields,
        val_fraction=val_fraction,
        test_fraction=test_fraction,
        labelled=sorted(labelled),
        unlabelled=sorted([c for c in pool if c not in labelled] + extra),
        val=sorted(val),
        test=sorted(test))


def validate_split(split: Dict,
                   display: str = 'split',
                   case_ids: Optional[Sequence[str]] = None,
                   labelled_ids: Optional[Sequence[str]] = None) -> Dict:
    """Check the structure and consistency of a split.

    Args:
        split (dict): A split as made by :func:`make_split`.
        display (str): Name for error messages.
        case_ids (Sequence[str], optional): All cases of the dataset; the
            split must cover exactly these.
        labelled_ids (Sequence[str], optional): Cases with ground truth; only
            these may be labelled, val or test.

    Returns:
        dict: The split.

    Raises:
        DatasetFormatError: The split is malformed or inconsistent.
    """

    def fail(msg):
        raise DatasetFormatError(f'{display}: {msg}')

    if not isinstance(split, dict):
        fail('expected a JSON object')
    missing = [
        k for k in SPLIT_SUBSETS + ('seed', 'label_ratio') if k not in split
    ]
    if missing:
        fail(f'keys {missing} missing; regenerate it with '
             'tools/dataset_converters/make_splits.py')
    try:
        check_label_ratio(split['label_ratio'])
        if split.get('n_labelled') is not None:
            check_n_labelled(split['n_labelled'])
        _check_seed(split['seed'])
    except ValueError as exc:
        fail(str(exc))
    seen: Dict[str, str] = {}
    for subset in SPLIT_SUBSETS:
        ids = split[subset]
        if not isinstance(ids, list) or not all(
                isinstance(c, str) for c in ids):
            fail(f"'{subset}' must be a list of case id strings")
        for c in ids:
            if c in seen:
                fail(f'case {c!r} is in both {seen[c]!r} and {subset!r}')
            seen[c] = subset
    if not split['labelled']:
        fail("'labelled' is empty; a split needs at least one labelled case")
    if split.get('n_labelled') is not None and (
            len(split['labelled']) != split['n_labelled']):
        fail(f"'n_labelled' is {split['n_labelled']} but 'labelled' holds "
             f"{len(split['labelled'])} cases")
    if case_ids is not None:
        unknown = sorted(set(seen) - set(case_ids))
        absent = sorted(set(case_ids) - set(seen))
        if unknown:
            fail(f'cases {unknown} are not in the dataset')
        if absent:
            fail(f'dataset cases {absent} are in no subset')
    if labelled_ids is not None:
        no_gt = sorted(
            c for s in ('labelled', 'val', 'test') for c in split[s]
            if c not in set(labelled_ids))
        if no_gt:
            fail(f'cases {no_gt} have no ground truth but are labelled, val '
                 'or test')
    return split


def write_split(out_dir: PathLike, split: Dict,
                overwrite: bool = False) -> Path:
    """Write a split to ``out_dir/splits/`` under :func:`split_filename`.

    The write is atomic. An existing identical file is left as is.

    Args:
        out_dir (str | PathLike): Converted dataset folder.
        split (dict): Split from :func:`make_split`.
        overwrite (bool): Replace an existing different file. Defaults to
            False.

    Returns:
        Path: The split file.

    Raises:
        FileExistsError: A different split file exists and ``overwrite`` is
            False.
    """
    validate_split(split)
    folder = Path(out_dir) / 'splits'
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / split_filename(split['seed'], split['label_ratio'],
                                   split.get('n_labelled'))
    if path.exists():
        try:
            same = read_json(path) == split
        except (ValueError, OSError):
            same = False
        if same:
            return path
        if not overwrite:
            raise FileExistsError(
                f'{path} exists with a different split; pass overwrite=True '
                '(--overwrite) to replace it')
    write_json_atomic(path, split)
    return path


def load_split(path: PathLike,
               case_ids: Optional[Sequence[str]] = None) -> Dict:
    """Load and validate a split file.

    When ``case_ids`` is None and the file lies in ``OUT/splits/`` next to a
    ``OUT/meta.json``, the split is checked against the cases of that meta
    file (covering exactly its cases; only labelled cases in labelled, val
    and test).

    Args:
        path (str | PathLike): Split JSON file.
        case_ids (Sequence[str], optional): All cases the split must cover.

    Returns:
        dict: The split.
    """
    path = Path(path)
    split = read_json(path)
    labelled_ids = None
    meta_path = path.parent.parent / 'meta.json'
    if case_ids is None and path.parent.name == 'splits' and (
            meta_path.is_file()):
        cases = read_json(meta_path).get('cases', {})
        case_ids = list(cases)
        labelled_ids = [
            c for c, info in cases.items() if info.get('label') is not None
        ]
    return validate_split(split, str(path), case_ids, labelled_ids)


def write_splits(out_dir: PathLike,
                 seeds: Sequence[int] = DEFAULT_SPLIT_SEEDS,
                 label_ratios: Sequence[float] = DEFAULT_LABEL_RATIOS,
                 val_fraction: float = 0.1,
                 test_fraction: float = 0.2,
                 overwrite: bool = False,
                 labelled_cases: Sequence[int] = ()) -> List[Path]:
    """Write splits for every seed and labelled amount of a converted
    dataset: each label ratio, and each number of labelled cases.

    Cases are read from ``out_dir/meta.json``; cases without ground truth
    (``label`` null) only ever go to ``unlabelled``, and cases recorded with
    no foreground (``foreground_voxels`` 0) are never drawn as labelled.

    Args:
        out_dir (str | PathLike): Converted dataset folder.
        seeds (Sequence[int]): Split seeds. Defaults to (0, 1, 2).
        label_ratios (Sequence[float]): Label ratios. Defaults to
            (0.01, 0.05, 0.1, 0.25, 1.0).
        val_fraction (float): See :func:`make_split`. Defaults to 0.1.
        test_fraction (float): See :func:`make_split`. Defaults to 0.2.
        overwrite (bool): Replace existing different split files.
        labelled_cases (Sequence[int]): Numbers of labelled cases, e.g.
            ``(1, 2, 4, 8)``. Defaults to none.

    Returns:
        list[Path]: The split files.
    """
    meta = read_json(Path(out_dir) / 'meta.json')
    cases = meta.get('cases') or {}
    labelled = [c for c, info in cases.items() if info.get('label')]
    unlabelled = [c for c, info in cases.items() if not info.get('label')]
    empty = [c for c in labelled if cases[c].get('foreground_voxels') == 0]
    if not labelled:
        raise ValueError(f'{out_dir}: no case with ground truth; cannot '
                         'make splits')
    amounts = [dict(label_ratio=check_label_ratio(r)) for r in label_ratios]
    amounts += [dict(label_ratio=None, n_labelled=check_n_labelled(n))
                for n in labelled_cases]
    paths = []
    for seed in seeds:
        for amount in amounts:
            split = make_split(labelled, seed=seed, val_fraction=val_fraction,
                               test_fraction=test_fraction,
                               unlabelled_only=unlabelled,
                               empty_cases=empty, **amount)
            paths.append(write_split(out_dir, split, overwrite=overwrite))
    return paths
