# SSL benchmark, supervised reference: the student network of the SSL
# configs (UNet + FCN head, AdamW, 500 iterations at 128x128) trained on the
# labelled cases only, 4 slices per batch as in the labelled half of an SSL
# batch. tools/benchmark/ssl_benchmark.py sets data root, split, classes,
# image size and schedule; the dataset named here is only the template.
_base_ = [
    '../_base_/models/unet_fcn.py',
    '../_base_/datasets/spine_synthetic-128px.py',
    '../_base_/default_runtime.py', '../_base_/schedules/schedule_500.py'
]
train_dataloader = dict(batch_size=4)
default_hooks = dict(
    logger=dict(interval=50),
    checkpoint=dict(interval=500, save_best=None, max_keep_ckpts=1))
