# Semi-supervised training, 500 iterations: the EMA-teacher runtime
# (../semi_runtime.py) on schedule_500.py, validating teacher and student
# (TeacherStudentValLoop), one checkpoint at the end.
_base_ = ['../semi_runtime.py', './schedule_500.py']
val_cfg = dict(type='TeacherStudentValLoop')
default_hooks = dict(
    logger=dict(interval=50),
    checkpoint=dict(interval=500, save_best=None, max_keep_ckpts=1))
