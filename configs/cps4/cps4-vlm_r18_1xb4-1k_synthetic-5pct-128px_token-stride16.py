# Variant of cps4-vlm_r18_1xb4-1k_synthetic-5pct-128px.py: visual tokens from
# the stride-16 stage (ResNet-18 layer 3, 256 channels) instead of stride 32,
# an 8x8 token grid at 128 px instead of 4x4, so one token covers less than
# one vertebral body and the token-level target can tell the levels apart.
_base_ = [
    '../_base_/models/cps4_vlm_r18.py',
    '../_base_/datasets/spine_synthetic-128px.py',
    '../_base_/schedules/vlm_1k.py'
]
model = dict(token_index=-2)
train_dataloader = dict(
    batch_size=4, dataset=dict(split='splits/seed0_5pct.json'))
