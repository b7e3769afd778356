_base_ = ['./cps4_vlm_r18.py']
model = dict(
    backbone=dict(depth=50),
    in_channels=[256, 512, 1024, 2048])
