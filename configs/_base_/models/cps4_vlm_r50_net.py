# CPS4VLM with a ResNet-50 image encoder (see cps4_vlm_r18_net.py).
_base_ = ['./cps4_vlm_r18_net.py']
vlm = dict(
    backbone=dict(depth=50),
    in_channels=[256, 512, 1024, 2048])
