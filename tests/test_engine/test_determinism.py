"""Same seed, same losses: the first 20 iterations on the CPU, twice."""
from pathlib import Path

import numpy as np
import pytest
from mmengine.config import Config
from mmengine.registry import init_default_scope
from mmengine.runner import Runner

import cps4  # noqa: F401
from tiny_models import TINY_TEXT, tiny_student

REPO_ROOT = Path(__file__).resolve().parents[2]
CONFIGS = {
    'supervised': 'configs/supervised/sup_unet-s5-d16-fcn_1xb8-2k_synthetic-5pct-192px.py',
    'mean_teacher': 'configs/ssl/'
    'mean-teacher_unet-s5-d16-fcn_2xb4-500_synthetic-5pct-128px.py',
    'cps4': 'configs/cps4/'
    'cps4-mean-teacher_unet-s5-d16-fcn_2xb4-500_synthetic-5pct-128px.py',
}
ITERS = 20


def make_cfg(method: str, root: Path, work: Path, run: int) -> Config:
    cfg = Config.fromfile(REPO_ROOT / CONFIGS[method])
    cfg.randomness = dict(seed=3, deterministic=True)
    cfg.experiment_name = f'determinism_{method}_{run}'
    cfg.work_dir = str(work / f'{method}_{run}')
    split = 'splits/seed0_25pct.json'
    if method == 'supervised':
        cfg.model.backbone = tiny_student(20)['backbone']
        cfg.model.decode_head = tiny_student(20)['decode_head']
        datasets = [cfg.train_dataloader.dataset]
    else:
        cfg.model.segmentor = tiny_student(20)
        datasets = cfg.train_dataloader.dataset.datasets
        cfg.train_dataloader.sampler.batch_size = 2
    if method == 'cps4':
        vlm = Config.fromfile(
            REPO_ROOT / 'configs/cps4/cps4-vlm_r18_1xb4-1k_synthetic-5pct-128px.py')
        vlm.model.text_encoder = TINY_TEXT
        vlm.model.embed_dim = 32
        cfg.model.vlm = vlm.model  # random, seeded weights
    for ds in datasets:
        ds.data_root = str(root)
        ds.split = split
    cfg.train_dataloader.batch_size = 2
    cfg.train_dataloader.num_workers = 0
    cfg.train_dataloader.persistent_workers = False
    cfg.train_cfg = dict(type='IterBasedTrainLoop', max_iters=ITERS,
                         val_interval=10 * ITERS)
    cfg.val_cfg = None
    cfg.val_dataloader = None
    cfg.val_evaluator = None
    cfg.test_cfg = cfg.test_dataloader = cfg.test_evaluator = None
    cfg.default_hooks.logger.interval = 1
    cfg.default_hooks.checkpoint = dict(type='CheckpointHook',
                                        interval=10 * ITERS)
    cfg.custom_hooks = [h for h in cfg.custom_hooks
                        if h.type != 'PseudoLabelVisualizationHook']
    return cfg


def losses(cfg: Config) -> np.ndarray:
    runner = Runner.from_cfg(cfg)
    runner.train()
    return np.asarray(runner.message_hub.get_scalar('train/loss').data[0])


@pytest.mark.parametrize('method', sorted(CONFIGS))
def test_same_seed_same_losses(method, tiny_spine_root, tmp_path):
    init_default_scope('mmseg')
    first = losses(make_cfg(method, tiny_spine_root, tmp_path, 0))
    second = losses(make_cfg(method, tiny_spine_root, tmp_path, 1))
    assert len(first) == ITERS
    assert np.isfinite(first).all()
    np.testing.assert_array_equal(first, second)
    assert len(np.unique(first)) > 1  # the runs did train


def test_another_seed_gives_other_losses(tiny_spine_root, tmp_path):
    """The comparison above can fail: the seed does reach the run."""
    init_default_scope('mmseg')
    first = losses(make_cfg('supervised', tiny_spine_root, tmp_path, 0))
    cfg = make_cfg('supervised', tiny_spine_root, tmp_path, 1)
    cfg.randomness = dict(seed=4, deterministic=True)
    assert not np.array_equal(first, losses(cfg))
