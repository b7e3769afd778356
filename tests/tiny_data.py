"""Point configs at the tiny converted dataset of ``conftest.tiny_spine_root``
(importable: tests/ is on sys.path)."""
from pathlib import Path
from typing import Sequence

from mmengine.config import Config

#: The split the tiny semi-supervised runs train on.
TINY_SPLIT = 'splits/seed0_25pct.json'
LOADERS = ('train_dataloader', 'val_dataloader', 'test_dataloader')


def use_tiny_semi_data(cfg: Config, root: Path, batch_size: int,
                       loaders: Sequence[str] = LOADERS) -> None:
    """Make a semi-supervised config read ``root`` in the main process.

    Both training sources and the datasets of the other ``loaders`` read
    :data:`TINY_SPLIT` of ``root``; ``loaders`` start no worker processes;
    each training batch holds ``batch_size`` slices per source.
    """
    for ds in cfg.train_dataloader.dataset.datasets:
        ds.data_root = str(root)
        ds.split = TINY_SPLIT
    for key in loaders:
        cfg[key].num_workers = 0
        cfg[key].persistent_workers = False
        if key != 'train_dataloader':
            cfg[key].dataset.data_root = str(root)
            cfg[key].dataset.split = TINY_SPLIT
    cfg.train_dataloader.batch_size = batch_size
    cfg.train_dataloader.sampler.batch_size = batch_size
