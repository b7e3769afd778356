# As sup_unet-s5-d16-fcn_1xb4-1k_synthetic-100pct-128px.py on the labelled 5%.
_base_ = [
    '../_base_/models/unet_fcn.py',
    '../_base_/datasets/spine_synthetic-128px.py',
    '../_base_/default_runtime.py',
    '../_base_/schedules/schedule_1k.py'
]
model = dict(decode_head=dict(num_classes=20))
train_dataloader = dict(batch_size=4,
                        dataset=dict(split='splits/seed0_5pct.json'))
train_cfg = dict(val_interval=1000)
default_hooks = dict(
    logger=dict(interval=50),
    checkpoint=dict(interval=1000, save_best=None, max_keep_ckpts=1))
