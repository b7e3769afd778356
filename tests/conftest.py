"""Shared fixtures: a tiny synthetic spine dataset, converted to slices."""
import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO_ROOT.parent / 'shared' / 'data'

# Keep BLAS/OpenMP from oversubscribing the CI machine's two cores.
os.environ.setdefault('OMP_NUM_THREADS', '2')


@pytest.fixture(scope='session')
def tiny_spine_root(tmp_path_factory) -> Path:
    """Six 64x64 synthetic cases converted to the slice layout."""
    from cps4.datasets.converters import convert_dataset
    from cps4.datasets.synthetic_spine import write_synthetic_dataset

    base = tmp_path_factory.mktemp('tiny_spine')
    raw = write_synthetic_dataset(
        base / 'raw', num_cases=6, seed=0, image_size=(64, 64),
        progress=False)
    return Path(convert_dataset(raw, base / 'converted', layout='nnunet'))
