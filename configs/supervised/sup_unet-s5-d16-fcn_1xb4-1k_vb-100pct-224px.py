# Supervised UNet on MyoSegmenTUM L1-L5 at native 224x224, batch 4, 1k
# iterations (CPU-sized).
_base_ = [
    '../_base_/models/unet_fcn.py',
    '../_base_/datasets/spine_myosegmentum_vb.py',
    '../_base_/default_runtime.py',
    '../_base_/schedules/schedule_1k.py'
]
model = dict(decode_head=dict(num_classes=6))
train_dataloader = dict(batch_size=4)
default_hooks = dict(logger=dict(interval=50))
