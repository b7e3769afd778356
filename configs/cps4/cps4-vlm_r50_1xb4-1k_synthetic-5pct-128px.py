# Backbone swap: the model _base_ (ResNet-50).
_base_ = [
    '../_base_/models/cps4_vlm_r50.py',
    '../_base_/datasets/spine_synthetic-128px.py',
    '../_base_/schedules/vlm_1k.py'
]
train_dataloader = dict(
    batch_size=4, dataset=dict(split='splits/seed0_5pct.json'))
