_base_ = [
    '../_base_/models/deeplabv3plus_r18.py',
    '../_base_/datasets/spine_synthetic.py',
    '../_base_/default_runtime.py',
    '../_base_/schedules/schedule_2k.py'
]
model = dict(decode_head=dict(num_classes=20))
train_dataloader = dict(dataset=dict(split='splits/seed0_5pct.json'))
