# Ablation: prompt-learnable.
_base_ = ['./cps4-vlm_r18_1xb4-1k_synthetic-5pct.py']
model = dict(prompt=dict(style='learnable', n_ctx=4))
