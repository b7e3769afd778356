# Stage 1 (class-specific consistency constrained VLM pretraining) on the
# labelled 5% of the synthetic spine data, 128x128. Also the template of
# the SSL benchmark's stage-1 runs.
_base_ = [
    '../_base_/models/cps4_vlm_r18.py',
    '../_base_/datasets/spine_synthetic-128px.py',
    '../_base_/schedules/vlm_1k.py'
]
train_dataloader = dict(
    batch_size=4, dataset=dict(split='splits/seed0_5pct.json'))
