# Ablation: no-pixel-loss.
_base_ = ['./cps4-vlm_r18_1xb4-1k_vb-160px-5pct.py']
model = dict(pixel_loss=None)
