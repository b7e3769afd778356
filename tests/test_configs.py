"""Every shipped config parses, builds its model and runs a forward pass;
leaf configs follow one naming order and inherit only ``_base_`` files."""
import ast
import re
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
NEEDS_USER_FILES = {'cps4-vlm_r18_1xb4-1k_synthetic-5pct-128px_text-local-folder'}


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
        # the stage-1 checkpoint is the user's (--cfg-options
        # model.vlm.init_cfg.checkpoint=...): no run output in a config
        assert cfg.model.vlm.type == 'CPS4VLM'
        assert cfg.model.vlm.init_cfg.checkpoint is None
    if path.stem in NEEDS_USER_FILES:
        with pytest.raises(FileNotFoundError, match='checkpoints/text_encoder'):
            MODELS.build(cfg.model)
        return
    model = MODELS.build(cfg.model).eval()
    with torch.no_grad():
        out = model(torch.zeros(1, 1, 64, 64), mode='tensor')
    assert out.shape[:2] == (1, num_classes)


#: ``{algo}_{model}_{N}xb{B}-{iters}_{data}-{labels}-{px}[_{variant}]``
NAME = re.compile(r'^(?P<algo>[a-z0-9-]+)_(?P<model>[a-z0-9-]+)_'
                  r'(?P<gpus>\d+)xb(?P<batch>\d+)-(?P<iters>\d+k?)_'
                  r'(?P<data>[a-z0-9]+)-(?P<labels>\d+pct)-(?P<px>\d+px)'
                  r'(_[a-z0-9-]+)?$')


@pytest.mark.parametrize('path', CONFIGS, ids=lambda p: p.stem)
def test_config_name_and_bases(path):
    match = NAME.match(path.stem)
    assert match, f'{path.name}: not {NAME.pattern}'
    cfg = Config.fromfile(path)
    assert match['data'] == dataset_of(path)
    px = int(match['px'][:-2])
    crops = [t['crop_size'] for t in _train_transforms(cfg)
             if t['type'] == 'RandomCrop']
    assert crops and all(c == (px, px) for c in crops), (path.name, crops)
    iters = match['iters']
    assert cfg.train_cfg.max_iters == (int(iters[:-1]) * 1000
                                       if iters.endswith('k') else int(iters))
    # a leaf inherits _base_ files only, never another leaf
    tree = ast.parse(path.read_text())
    bases = [ast.literal_eval(n.value) for n in tree.body
             if isinstance(n, ast.Assign)
             and getattr(n.targets[0], 'id', None) == '_base_']
    assert bases and all('/_base_/' in b for b in bases[0]), bases
    # no run output (a stage-1 checkpoint comes by --cfg-options)
    code = [line for line in path.read_text().splitlines()
            if not line.lstrip().startswith('#')]
    assert not any('work_dirs' in line for line in code), path.name


def _train_transforms(cfg):
    ds = cfg.train_dataloader.dataset
    for d in ds.get('datasets', [ds]):
        yield from d.pipeline


def test_one_name_for_the_supervised_baseline():
    algos = {NAME.match(p.stem)['algo'] for p in CONFIGS}
    assert 'sup' in algos
    assert not algos & {'sup-only', 'supervised', 'unet-s5-d16'}
