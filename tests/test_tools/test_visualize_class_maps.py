"""tools/analysis/visualize_class_maps.py draws a PNG grid of class maps."""
import subprocess
import sys
from pathlib import Path

import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope
from mmseg.registry import MODELS
from PIL import Image

import cps4  # noqa: F401

REPO_ROOT = Path(__file__).resolve().parents[2]
BASE = REPO_ROOT / 'configs/cps4/cps4-vlm_r18_1xb4-1k_synthetic-5pct-128px.py'
TINY = """
_base_ = ['{base}']
model = dict(
    embed_dim=32,
    text_encoder=dict(
        config=dict(model_type='bert', hidden_size=32, num_hidden_layers=1,
                    num_attention_heads=2, intermediate_size=64),
        embed_dim=32))
test_dataloader = dict(dataset=dict(data_root='{root}'))
"""


def test_grid_png(tiny_spine_root, tmp_path):
    cfg_path = tmp_path / 'tiny_vlm.py'
    cfg_path.write_text(TINY.format(base=BASE, root=tiny_spine_root))
    cfg = Config.fromfile(cfg_path)
    init_default_scope('mmseg')
    model = MODELS.build(cfg.model)
    ckpt = tmp_path / 'tiny.pth'
    torch.save({'state_dict': model.state_dict(), 'meta': {}}, ckpt)
    out = tmp_path / 'grid.png'
    proc = subprocess.run(
        [sys.executable,
         str(REPO_ROOT / 'tools/analysis/visualize_class_maps.py'),
         str(cfg_path), str(ckpt), '--out', str(out), '--num-slices', '2'],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert not Path(str(out) + '.tmp.png').exists()
    width, height = Image.open(out).size
    # 2 slices x 3 rows of 10 panels (image, GT, 20 class maps, unified)
    assert width > height > 0
