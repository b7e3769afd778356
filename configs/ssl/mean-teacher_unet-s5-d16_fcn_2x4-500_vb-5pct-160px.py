# Mean Teacher on MyoSegmenTUM (L1-L5), 5% labelled cases, 4 labelled + 4
# unlabelled slices per batch, 500 iterations at 160x160.
_base_ = [
    '../_base_/models/semi_unet_fcn.py',
    '../_base_/datasets/spine_myosegmentum_vb-160px_semi.py',
    '../_base_/semi_runtime.py', '../_base_/schedules/schedule_500.py'
]
model = dict(
    ssl_strategy=dict(type='MeanTeacher'),
    segmentor=dict(decode_head=dict(num_classes=6)))
default_hooks = dict(
    logger=dict(interval=50),
    checkpoint=dict(interval=500, save_best=None, max_keep_ckpts=1))
train_cfg = dict(val_interval=500)
val_cfg = dict(type='TeacherStudentValLoop')
