# Semi-supervised training, 500 iterations: the EMA-teacher runtime
# (../semi_runtime.py) on schedule_500.py, validating teacher and student
# (TeacherStudentValLoop) every 100 iterations. Kept: the last checkpoint
# and the best on the val cases (`mDice`: that of the network tested,
# semi_test_cfg.predict_on); validating changes no training result
# (ValRandomStateHook).
_base_ = ['../semi_runtime.py', './schedule_500.py']
train_cfg = dict(val_interval=100)
val_cfg = dict(type='TeacherStudentValLoop')
default_hooks = dict(
    logger=dict(interval=50),
    checkpoint=dict(interval=500, save_best='mDice', rule='greater',
                    max_keep_ckpts=1))
