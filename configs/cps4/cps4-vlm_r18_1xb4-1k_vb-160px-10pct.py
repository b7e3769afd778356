# Stage 1 on the labelled 10% of MyoSegmenTUM at 160 px.
_base_ = ['./cps4-vlm_r18_1xb4-1k_vb-160px-5pct.py']
train_dataloader = dict(dataset=dict(split='splits/seed0_10pct.json'))
val_dataloader = dict(dataset=dict(split='splits/seed0_10pct.json'))
test_dataloader = dict(dataset=dict(split='splits/seed0_10pct.json'))
