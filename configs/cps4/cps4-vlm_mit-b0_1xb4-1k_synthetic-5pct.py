# Backbone swap: one `_base_` change.
_base_ = [
    '../_base_/models/cps4_vlm_mit-b0.py',
    '../_base_/datasets/spine_synthetic-128px.py',
    '../_base_/default_runtime.py', '../_base_/schedules/schedule_1k.py'
]
train_dataloader = dict(
    batch_size=4, dataset=dict(split='splits/seed0_5pct.json'))
optim_wrapper = dict(optimizer=dict(lr=2e-3))
default_hooks = dict(logger=dict(interval=50))
