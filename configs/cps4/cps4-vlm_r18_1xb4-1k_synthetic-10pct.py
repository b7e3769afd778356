# Stage 1 on the labelled 10% of the synthetic spine data.
_base_ = ['./cps4-vlm_r18_1xb4-1k_synthetic-5pct.py']
train_dataloader = dict(dataset=dict(split='splits/seed0_10pct.json'))
val_dataloader = dict(dataset=dict(split='splits/seed0_10pct.json'))
test_dataloader = dict(dataset=dict(split='splits/seed0_10pct.json'))
