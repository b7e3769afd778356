"""Every shipped config parses, builds its model and runs a forward pass."""
from pathlib import Path

import pytest
import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope
from mmseg.registry import MODELS

import cps4  # noqa: F401

REPO_ROOT = Path(__file__).resolve().parents[1]
CONFIGS = sorted((REPO_ROOT / 'configs').glob('[!_]*/*.py'))
NUM_CLASSES = {'synthetic': 20, 'vb': 6, 'lumbar2d': 3}
# Configs that need files a user supplies (a local text-encoder folder).
NEEDS_USER_FILES = {'cps4-vlm_r18_1xb4-1k_synthetic-5pct_text-local-folder'}


def dataset_of(path: Path) -> str:
    name = path.stem.split('_')[3] if path.stem.startswith('cps4') else \
        path.stem.rsplit('_', 1)[-1]
    return name.split('-')[0]


@pytest.mark.parametrize('path', CONFIGS, ids=lambda p: p.stem)
def test_config_builds_and_runs(path):
    cfg = Config.fromfile(path)
    assert cfg.custom_imports['imports'] == ['cps4']
    num_classes = NUM_CLASSES[dataset_of(path)]
    if 'decode_head' in cfg.model:
        assert cfg.model.decode_head.num_classes == num_classes
    assert cfg.train_dataloader.dataset.subset == 'labelled'
    assert cfg.test_dataloader.dataset.subset == 'test'
    init_default_scope('mmseg')
    if path.stem in NEEDS_USER_FILES:
        with pytest.raises(FileNotFoundError, match='checkpoints/text_encoder'):
            MODELS.build(cfg.model)
        return
    model = MODELS.build(cfg.model).eval()
    with torch.no_grad():
        out = model(torch.zeros(1, 1, 64, 64), mode='tensor')
    assert out.shape[:2] == (1, num_classes)
