# Stage 1 on every labelled synthetic case.
_base_ = [
    '../_base_/models/cps4_vlm_r18.py',
    '../_base_/datasets/spine_synthetic-128px.py',
    '../_base_/schedules/vlm_1k.py'
]
train_dataloader = dict(
    batch_size=4, dataset=dict(split='splits/seed0_100pct.json'))
