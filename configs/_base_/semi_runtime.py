# Runtime of semi-supervised training: EMA teacher, pseudo-label quality
# and pictures. Leaves use it through schedules/semi_500.py, which adds the
# TeacherStudentValLoop (val_cfg belongs to the schedule bases).
_base_ = ['./default_runtime.py']
custom_hooks = [
    dict(type='NumClassCheckHook'),
    dict(type='InvalidLossHook'),
    dict(type='ValRandomStateHook'),
    dict(type='EMATeacherHook', momentum=0.01, interval=1),
    dict(type='PseudoLabelQualityHook', interval=50),
    dict(type='PseudoLabelVisualizationHook', interval=500),
]
