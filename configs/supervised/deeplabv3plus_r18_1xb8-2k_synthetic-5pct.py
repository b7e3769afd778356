_base_ = ['./deeplabv3plus_r18_1xb8-2k_synthetic-100pct.py']
train_dataloader = dict(dataset=dict(split='splits/seed0_5pct.json'))
