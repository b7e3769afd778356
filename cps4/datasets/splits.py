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
  the pool in permutation order, so the labelled set of a smaller ratio is
  contained in that of a larger one (same seed); ``unlabelled`` is the rest
  of the pool. Rounding is half-up.
* With ``n >= 3`` cases, val and test each get at least one case (when
  their fraction is positive) and the pool keeps at least one. Tiny datasets
  (``n < 3``) get empty val and test: every case is in the pool, which
  guarantees one labelled case but leaves nothing to evaluate on.
* Cases without ground truth (``unlabelled_only``) never enter val, test or
  labelled; they are appended to ``unlabelled``.

Files are written as ``OUT/splits/seed{seed}_{pct}pct.json`` (``pct`` is the
label ratio in percent: ``5``, ``10``, ``100``, ``2.5``).
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


def split_filename(seed: int, label_ratio: float) -> str:
    """File name of a split: ``seed{seed}_{pct}pct.json``.

    Args:
        seed (int): Split seed.
        label_ratio (float): Labelled ratio in (0, 1].

    Returns:
        str: The file name.
    """
    return f'seed{_check_seed(seed)}_{format_pct(label_ratio)}pct.json'


def make_split(case_ids: Sequence[str],
               label_ratio: float,
               seed: int,
               val_fraction: float = 0.1,
               test_fraction: float = 0.2,
               unlabelled_only: Sequence[str] = ()) -> Dict:
    """Split cases into labelled, unlabelled, val and test sets.

    See the module docstring for the rules.

    Args:
        case_ids (Sequence[str]): Cases with ground truth.
        label_ratio (float): Fraction of the training pool that is labelled,
            in (0, 1].
        seed (int): Non-negative seed.
        val_fraction (float): Fraction of all cases used for validation.
            Defaults to 0.1.
        test_fraction (float): Fraction of all cases used for testing.
            Defaults to 0.2.
        unlabelled_only (Sequence[str]): Cases without ground truth, always
            unlabelled. Defaults to ().

    Returns:
        dict: ``labelled``, ``unlabelled``, ``val``, ``test`` (sorted lists of
        case ids), ``seed``, ``label_ratio``, ``val_fraction`` and
        ``test_fraction``.

    Raises:
        ValueError: Empty or duplicate case ids, a ratio outside (0, 1], a
            negative seed or fractions that leave no training case.
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
    label_ratio = check_label_ratio(label_ratio)
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
    n_labelled = max(1, _round_half_up(label_ratio * len(pool)))
    return dict(
        seed=seed,
        label_ratio=label_ratio,
        val_fraction=val_fraction,
        test_fraction=test_fraction,
        labelled=sorted(pool[:n_labelled]),
        unlabelled=sorted(pool[n_labelled:] + extra),
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
    """Write a split to ``out_dir/splits/seed{seed}_{pct}pct.json``.

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
    path = folder / split_filename(split['seed'], split['label_ratio'])
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
                 overwrite: bool = False) -> List[Path]:
    """Write splits for every seed and label ratio of a converted dataset.

    Cases are read from ``out_dir/meta.json``; cases without ground truth
    (``label`` null) only ever go to ``unlabelled``.

    Args:
        out_dir (str | PathLike): Converted dataset folder.
        seeds (Sequence[int]): Split seeds. Defaults to (0, 1, 2).
        label_ratios (Sequence[float]): Label ratios. Defaults to
            (0.01, 0.05, 0.1, 0.25, 1.0).
        val_fraction (float): See :func:`make_split`. Defaults to 0.1.
        test_fraction (float): See :func:`make_split`. Defaults to 0.2.
        overwrite (bool): Replace existing different split files.

    Returns:
        list[Path]: The split files.
    """
    meta = read_json(Path(out_dir) / 'meta.json')
    cases = meta.get('cases') or {}
    labelled = [c for c, info in cases.items() if info.get('label')]
    unlabelled = [c for c, info in cases.items() if not info.get('label')]
    if not labelled:
        raise ValueError(f'{out_dir}: no case with ground truth; cannot '
                         'make splits')
    for ratio in label_ratios:
        check_label_ratio(ratio)
    paths = []
    for seed in seeds:
        for ratio in label_ratios:
            split = make_split(labelled, ratio, seed, val_fraction,
                               test_fraction, unlabelled)
            paths.append(write_split(out_dir, split, overwrite=overwrite))
    return paths
