_base_ = ['./cps4-vlm_r18_1xb4-1k_vb-5pct.py']
train_dataloader = dict(dataset=dict(split='splits/seed0_100pct.json'))
