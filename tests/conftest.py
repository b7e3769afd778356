"""Shared fixtures: a tiny synthetic spine dataset, converted to slices, and
a tiny supervised config that trains on it in seconds."""
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
    from cps4.datasets.synthetic import write_synthetic_dataset

    base = tmp_path_factory.mktemp('tiny_spine')
    raw = write_synthetic_dataset(
        base / 'raw', num_cases=6, seed=0, image_size=(64, 64),
        progress=False)
    return Path(convert_dataset(raw, base / 'converted', layout='nnunet'))


TINY_SUP_CFG = """
_base_ = ['{base}']
data_root = '{root}'
meta_keys = {{{{_base_.meta_keys}}}}
train_pipeline = [
    dict(type='LoadImageFromFile', color_type='grayscale'),
    dict(type='LoadAnnotations'),
    dict(type='PackSegInputs', meta_keys=meta_keys),
]
train_dataloader = dict(
    batch_size=4, num_workers=0, persistent_workers=False,
    dataset=dict(data_root=data_root, pipeline=train_pipeline,
                 skip_empty=True))
val_dataloader = dict(batch_size=4, num_workers=0, persistent_workers=False,
                      dataset=dict(data_root=data_root))
test_dataloader = dict(batch_size=4, num_workers=0, persistent_workers=False,
                       dataset=dict(data_root=data_root))
optim_wrapper = dict(optimizer=dict(lr=1e-2))
param_scheduler = []
train_cfg = dict(max_iters={iters}, val_interval=1000)
default_hooks = dict(
    logger=dict(interval=1),
    checkpoint=dict(interval={ckpt}, save_best=None, max_keep_ckpts=-1),
    visualization=dict(draw=False))
randomness = dict(seed=0, deterministic=False)
"""


@pytest.fixture(scope='session')
def tiny_sup_config(tiny_spine_root):
    """Factory: ``(folder, iters, ckpt=1000) -> path`` of a config training
    the supervised UNet on ``tiny_spine_root`` for ``iters`` iterations
    (checkpoint every ``ckpt``)."""
    base = (REPO_ROOT / 'configs/supervised/'
            'sup_unet-s5-d16-fcn_1xb8-2k_synthetic-100pct-192px.py')

    def write(folder: Path, iters: int, ckpt: int = 1000) -> Path:
        path = Path(folder) / f'tiny_{iters}.py'
        path.write_text(TINY_SUP_CFG.format(
            base=base, root=tiny_spine_root, iters=iters, ckpt=ckpt))
        return path

    return write
