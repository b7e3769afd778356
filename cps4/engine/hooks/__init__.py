from .num_class_check_hook import NumClassCheckHook

__all__ = ['NumClassCheckHook']
