# Runtime of semi-supervised training: EMA teacher, pseudo-label quality
# and pictures.
# (Leaf configs set val_cfg = dict(type='TeacherStudentValLoop'); the
# schedule bases own val_cfg.)
_base_ = ['./default_runtime.py']
custom_hooks = [
    dict(type='NumClassCheckHook'),
    dict(type='InvalidLossHook'),
    dict(type='EMATeacherHook', momentum=0.01, interval=1),
    dict(type='PseudoLabelQualityHook', interval=50),
    dict(type='PseudoLabelVisualizationHook', interval=500),
]
