from .ema_teacher_hook import EMATeacherHook, ema_update
from .num_class_check_hook import NumClassCheckHook
from .pseudo_label_quality_hook import PseudoLabelQualityHook

__all__ = [
    'EMATeacherHook', 'NumClassCheckHook', 'PseudoLabelQualityHook',
    'ema_update'
]
