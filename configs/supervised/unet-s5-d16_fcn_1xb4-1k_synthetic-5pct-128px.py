_base_ = ['./unet-s5-d16_fcn_1xb4-1k_synthetic-100pct-128px.py']
train_dataloader = dict(dataset=dict(split='splits/seed0_5pct.json'))
