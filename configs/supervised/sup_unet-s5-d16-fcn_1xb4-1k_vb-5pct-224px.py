# As sup_unet-s5-d16-fcn_1xb4-1k_vb-100pct-224px.py on the labelled 5%.
_base_ = [
    '../_base_/models/unet_fcn.py',
    '../_base_/datasets/spine_myosegmentum_vb.py',
    '../_base_/default_runtime.py',
    '../_base_/schedules/schedule_1k.py'
]
model = dict(decode_head=dict(num_classes=6))
train_dataloader = dict(batch_size=4,
                        dataset=dict(split='splits/seed0_5pct.json'))
default_hooks = dict(logger=dict(interval=50))
