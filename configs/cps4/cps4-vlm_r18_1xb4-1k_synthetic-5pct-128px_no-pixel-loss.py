# Ablation of cps4-vlm_r18_1xb4-1k_synthetic-5pct-128px.py: no-pixel-loss.
_base_ = [
    '../_base_/models/cps4_vlm_r18.py',
    '../_base_/datasets/spine_synthetic-128px.py',
    '../_base_/schedules/vlm_1k.py'
]
model = dict(
    pixel_loss=None)
train_dataloader = dict(
    batch_size=4, dataset=dict(split='splits/seed0_5pct.json'))
