"""Prompt variants and tools/analysis/prompt_sensitivity.py."""
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope
from mmseg.registry import MODELS

import cps4  # noqa: F401
from cps4.models.prompts import load_prompt_variants, prompt_variant

REPO_ROOT = Path(__file__).resolve().parents[2]
BASE = REPO_ROOT / 'configs/cps4/cps4-vlm_r18_1xb4-1k_synthetic-5pct-128px.py'
TINY = """
_base_ = ['{base}']
model = dict(
    threshold=0.0,  # arg-max of the maps: a random model names some pixels
    embed_dim=32,
    text_encoder=dict(
        config=dict(model_type='bert', hidden_size=32, num_hidden_layers=1,
                    num_attention_heads=2, intermediate_size=64),
        embed_dim=32))
test_dataloader = dict(num_workers=0, persistent_workers=False,
                       dataset=dict(data_root='{root}'))
"""
VARIANTS = dict(variants=[
    dict(name='as trained'),
    dict(name='phrase only', style='name'),
    dict(name='ordinal', phrases=dict(L4='fourth lumbar vertebra',
                                      L5='fifth lumbar vertebra')),
])


@pytest.fixture
def tiny_vlm(tiny_spine_root, tmp_path):
    cfg_path = tmp_path / 'tiny_vlm.py'
    cfg_path.write_text(TINY.format(base=BASE, root=tiny_spine_root))
    init_default_scope('mmseg')
    torch.manual_seed(0)
    cfg = Config.fromfile(cfg_path)
    model = MODELS.build(cfg.model)
    # An untrained model gives every pixel the same class. Centring each
    # class's logit on a few slices lets the pixel features (and so the
    # prompts) decide, which makes the Dice values below non-trivial.
    from mmengine.dataset import pseudo_collate
    from mmseg.registry import DATASETS
    dataset = DATASETS.build(cfg.test_dataloader.dataset)
    batch = model.data_preprocessor(
        pseudo_collate([dataset[i] for i in range(4)]))
    with torch.no_grad():
        logits = model(batch['inputs'], mode='tensor')
        model.class_bias -= logits.mean(dim=(0, 2, 3))
    ckpt = tmp_path / 'tiny.pth'
    torch.save({'state_dict': model.state_dict(), 'meta': {}}, ckpt)
    return cfg_path, ckpt, model


def test_variant_changes_prompts_and_restores_them(tiny_vlm, tmp_path):
    _, _, model = tiny_vlm
    learner = model.prompt
    before = learner.texts()
    base_emb = model.class_embeddings()
    with prompt_variant(learner, VARIANTS['variants'][2]):
        texts = learner.texts()
        emb = model.class_embeddings()
    names = [c['name'] for c in learner.classes]
    l4 = names.index('L4')
    assert all('fourth lumbar vertebra' in t for t in texts[l4])
    assert not torch.allclose(emb[l4], base_emb[l4])
    torch.testing.assert_close(emb[0], base_emb[0])  # untouched class
    assert learner.texts() == before
    with prompt_variant(learner, dict(name='n', style='name')):
        assert learner.texts()[l4] == [learner.classes[l4]['phrase']]
    assert learner.texts() == before
    with pytest.raises(ValueError, match="class 'L9'"):
        with prompt_variant(learner, dict(name='x', phrases={'L9': 'y'})):
            pass
    assert learner.texts() == before  # restored after the error


def test_variant_file_errors(tmp_path):
    bad = tmp_path / 'v.json'
    bad.write_text(json.dumps(dict(variants=[dict(name='a', colour='x')])))
    with pytest.raises(ValueError, match="unknown key"):
        load_prompt_variants(bad)
    bad.write_text(json.dumps(dict(variants=[dict(name='a'),
                                             dict(name='a')])))
    with pytest.raises(ValueError, match='repeat'):
        load_prompt_variants(bad)
    bad.write_text(json.dumps(dict(variants=[
        dict(name='a', templates=['no placeholder'])])))
    with pytest.raises(ValueError, match='placeholder'):
        load_prompt_variants(bad)
    shipped = REPO_ROOT / 'configs/_base_/prompts/variants'
    for path in shipped.glob('*.json'):
        assert len(load_prompt_variants(path)) >= 5


def test_tool_table_matches_test_tool(tiny_vlm, tmp_path):
    cfg_path, ckpt, _ = tiny_vlm
    variants = tmp_path / 'variants.json'
    variants.write_text(json.dumps(VARIANTS))
    out = tmp_path / 'ps.json'
    proc = subprocess.run(
        [sys.executable,
         str(REPO_ROOT / 'tools/analysis/prompt_sensitivity.py'),
         str(cfg_path), str(ckpt), str(variants), '--subset', 'val',
         '--out-json', str(out)],
        capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(out.read_text())
    assert [r['variant'] for r in result['results']] == [
        'as trained', 'phrase only', 'ordinal']
    rows = {r['variant']: r['mDice'] for r in result['results']}
    assert len(set(rows.values())) > 1  # the prompts change the prediction
    # tools/test.py with a prompt file that holds the 'ordinal' phrases
    # reports the same volume Dice as the tool's 'ordinal' row
    prompts = json.loads((REPO_ROOT / 'configs/_base_/prompts/'
                          'mrspineseg_19units.json').read_text())
    for c in prompts['classes']:
        c['phrase'] = VARIANTS['variants'][2]['phrases'].get(
            c['name'], c.get('phrase', c['name']))
    ordinal = tmp_path / 'ordinal_prompts.json'
    ordinal.write_text(json.dumps(prompts))
    proc = subprocess.run(
        [sys.executable, str(REPO_ROOT / 'tools/test.py'), str(cfg_path),
         str(ckpt), '--work-dir', str(tmp_path / 'test'), '--cfg-options',
         'test_dataloader.dataset.subset=val',
         f'model.prompt.prompt_file={ordinal}'],
        capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    mdice = float(re.findall(r'mDice: ([0-9.]+)', proc.stdout)[-1])
    assert mdice > 0
    assert rows['ordinal'] == pytest.approx(mdice, abs=0.01)
