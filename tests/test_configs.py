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
    """The dataset token of a config name (mmseg naming, last such field)."""
    found = [
        part.split('-')[0] for part in path.stem.split('_')
        if part.split('-')[0] in NUM_CLASSES
    ]
    assert found, f'{path.name}: no dataset field in the name'
    return found[-1]


@pytest.mark.parametrize('path', CONFIGS, ids=lambda p: p.stem)
def test_config_builds_and_runs(path):
    cfg = Config.fromfile(path)
    assert cfg.custom_imports['imports'] == ['cps4']
    num_classes = NUM_CLASSES[dataset_of(path)]
    net = cfg.model.get('segmentor', cfg.model)  # semi models wrap one
    if 'decode_head' in net:
        assert net.decode_head.num_classes == num_classes
    train = cfg.train_dataloader.dataset
    if train.type == 'ConcatDataset':  # labelled + unlabelled sources
        assert [d.subset for d in train.datasets] == ['labelled', 'unlabelled']
        assert cfg.train_dataloader.sampler.type == 'MultiSourceSampler'
        assert (cfg.train_dataloader.sampler.batch_size ==
                cfg.train_dataloader.batch_size)
    else:
        assert train.subset == 'labelled'
    assert cfg.test_dataloader.dataset.subset == 'test'
    init_default_scope('mmseg')
    if 'vlm' in cfg.model:
        # the stage-1 checkpoint is the user's; build with an untrained VLM
        cfg.model.vlm.init_cfg.checkpoint = None
    if path.stem in NEEDS_USER_FILES:
        with pytest.raises(FileNotFoundError, match='checkpoints/text_encoder'):
            MODELS.build(cfg.model)
        return
    model = MODELS.build(cfg.model).eval()
    with torch.no_grad():
        out = model(torch.zeros(1, 1, 64, 64), mode='tensor')
    assert out.shape[:2] == (1, num_classes)
