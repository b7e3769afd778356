# Supervised UNet on all synthetic training cases at 128x128, batch 4, 1k
# iterations (`make demo`'s ten-minute CPU budget). Also the template of the
# SSL benchmark's `sup` method (tools/benchmark/ssl_bench/methods.py).
_base_ = [
    '../_base_/models/unet_fcn.py',
    '../_base_/datasets/spine_synthetic-128px.py',
    '../_base_/default_runtime.py',
    '../_base_/schedules/schedule_1k.py'
]
model = dict(decode_head=dict(num_classes=20))
train_dataloader = dict(batch_size=4)
train_cfg = dict(val_interval=1000)
default_hooks = dict(
    logger=dict(interval=50),
    checkpoint=dict(interval=1000, save_best=None, max_keep_ckpts=1))
