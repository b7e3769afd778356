from .checkpoint import SAFE_GLOBALS, register_safe_globals

__all__ = ['SAFE_GLOBALS', 'register_safe_globals']
