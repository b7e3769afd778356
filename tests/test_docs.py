"""The code blocks of the how-tos run as written.

A block preceded by ``<!-- doc-test: NAME -->`` is extracted and executed
here, so a how-to cannot drift away from the code it documents.
"""
import re
import sys
import types
from pathlib import Path

import pytest
import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope
from mmseg.registry import MODELS

import cps4  # noqa: F401
from tiny_data import use_tiny_semi_data

REPO_ROOT = Path(__file__).resolve().parents[1]
HOWTO = REPO_ROOT / 'docs' / 'howto'
BLOCK = re.compile(r'<!-- doc-test: (\w+) -->\s*```python\n(.*?)```', re.S)


def doc_blocks(name: str) -> dict:
    return dict(BLOCK.findall((HOWTO / name).read_text()))


def load_module(module_name: str, source: str):
    """Execute ``source`` as importable module ``module_name``."""
    parent = module_name.rsplit('.', 1)[0]
    sys.modules.setdefault(parent, types.ModuleType(parent))
    module = types.ModuleType(module_name)
    exec(compile(source, f'<{module_name}>', 'exec'), module.__dict__)
    sys.modules[module_name] = module
    return module


def config_from_block(source: str, folder: Path, tmp_path: Path) -> Config:
    """Load a config block as if it lived in ``configs/<folder>/``."""
    path = tmp_path / 'configs' / folder / 'doc_config.py'
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(source.replace(
        "'../", f"'{REPO_ROOT / 'configs'}/"))
    return Config.fromfile(path)


@pytest.fixture(autouse=True)
def _scope():
    init_default_scope('mmseg')


def _semi_loss(cfg: Config, tiny_spine_root: Path) -> dict:
    """Losses of one stage-2 step of ``cfg`` on the tiny dataset."""
    from mmengine.runner import Runner
    cfg.model.segmentor.backbone.base_channels = 8
    cfg.model.segmentor.decode_head.in_channels = 8
    cfg.model.segmentor.decode_head.channels = 8
    use_tiny_semi_data(cfg, tiny_spine_root, batch_size=2,
                       loaders=('train_dataloader', ))
    loader = Runner.build_dataloader(cfg.train_dataloader)
    model = MODELS.build(cfg.model)
    model.train()
    data = model.data_preprocessor(next(iter(loader)), True)
    return model.loss(data['inputs'], data['data_samples'])


def test_ssl_strategy_howto(tiny_spine_root, tmp_path):
    blocks = doc_blocks('add_ssl_strategy.md')
    load_module('my_ssl.pseudo_label', blocks['ssl_strategy'])
    cfg = config_from_block(blocks['ssl_config'], 'my', tmp_path)
    assert cfg.model.ssl_strategy.type == 'PseudoLabel'
    assert cfg.custom_imports.imports == ['cps4', 'my_ssl.pseudo_label']
    losses = _semi_loss(cfg, tiny_spine_root)
    assert torch.isfinite(losses['loss_unsup_pl'])
    assert 'pl_dice_teacher' in losses


def test_fusion_rule_howto(tmp_path):
    blocks = doc_blocks('add_fusion_rule.md')
    load_module('my_fusion.vlm_first_fusion', blocks['fusion_rule'])
    cfg = config_from_block(blocks['fusion_config'], 'my', tmp_path)
    assert dict(cfg.model.fusion) == dict(type='VLMFirstFusion',
                                          vlm_threshold=0.8)
    rule = MODELS.build(cfg.model.fusion)
    torch.manual_seed(0)
    teacher = torch.rand(2, 6, 8, 8).softmax(1)
    maps = 0.5 * torch.rand(2, 6, 8, 8)  # the VLM is nowhere confident...
    maps[1, 3] = 0.95  # ...except on sample 1, for class 3 everywhere
    out = rule(teacher, maps, maps.argmax(1))
    torch.testing.assert_close(out['probs'][0], teacher[0])
    assert (out['probs'][1].argmax(0) == 3).all()
    torch.testing.assert_close(out['probs'].sum(1),
                               torch.ones(2, 8, 8))
    assert out['confidence'].shape == (2, 8, 8)
