# Mean Teacher on synthetic data, 5% labelled cases, 4 labelled + 4
# unlabelled slices per batch, 500 iterations at 128x128.
_base_ = [
    '../_base_/models/semi_unet_fcn.py',
    '../_base_/datasets/spine_synthetic-128px_semi.py',
    '../_base_/semi_runtime.py', '../_base_/schedules/schedule_500.py'
]
model = dict(ssl_strategy=dict(type='MeanTeacher'))
default_hooks = dict(
    logger=dict(interval=50),
    checkpoint=dict(interval=500, save_best=None, max_keep_ckpts=1))
train_cfg = dict(val_interval=500)
val_cfg = dict(type='TeacherStudentValLoop')
