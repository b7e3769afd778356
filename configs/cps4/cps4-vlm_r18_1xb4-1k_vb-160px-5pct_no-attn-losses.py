# Ablation: no-attn-losses.
_base_ = ['./cps4-vlm_r18_1xb4-1k_vb-160px-5pct.py']
model = dict(token_loss=None, pixel_loss=None)
