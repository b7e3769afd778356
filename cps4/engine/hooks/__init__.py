from .ema_teacher_hook import EMATeacherHook, ema_update
from .invalid_loss_hook import InvalidLossHook
from .memory_format_hook import MemoryFormatHook, to_memory_format
from .num_class_check_hook import NumClassCheckHook
from .pseudo_label_quality_hook import PseudoLabelQualityHook
from .pseudo_label_visualization_hook import PseudoLabelVisualizationHook
from .val_random_state_hook import ValRandomStateHook

__all__ = [
    'EMATeacherHook', 'InvalidLossHook', 'MemoryFormatHook',
    'NumClassCheckHook', 'PseudoLabelQualityHook',
    'PseudoLabelVisualizationHook', 'ValRandomStateHook', 'ema_update',
    'to_memory_format'
]
