_base_ = [
    '../_base_/models/unet_fcn.py',
    '../_base_/datasets/spine_lumbar2d.py',
    '../_base_/default_runtime.py',
    '../_base_/schedules/schedule_2k.py'
]
model = dict(decode_head=dict(num_classes=3))
