# FixMatch with DeepLabV3+ R-18 as student/teacher: only the first _base_
# differs from the UNet configs (semi_deeplabv3plus_r18.py).
_base_ = [
    '../_base_/models/semi_deeplabv3plus_r18.py',
    '../_base_/datasets/spine_synthetic-128px_semi.py',
    '../_base_/semi_runtime.py', '../_base_/schedules/schedule_500.py'
]
model = dict(
    ssl_strategy=dict(type='FixMatch'),
    semi_train_cfg=dict(pseudo_threshold=0.95, cutmix_prob=0.5))
default_hooks = dict(
    logger=dict(interval=50),
    checkpoint=dict(interval=500, save_best=None, max_keep_ckpts=1))
train_cfg = dict(val_interval=500)
val_cfg = dict(type='TeacherStudentValLoop')
