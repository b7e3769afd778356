# Ablation of cps4-vlm_r18_1xb4-1k_synthetic-5pct-128px.py: prompt-name.
_base_ = [
    '../_base_/models/cps4_vlm_r18.py',
    '../_base_/datasets/spine_synthetic-128px.py',
    '../_base_/schedules/vlm_1k.py'
]
model = dict(
    prompt=dict(style='name'))
train_dataloader = dict(
    batch_size=4, dataset=dict(split='splits/seed0_5pct.json'))
