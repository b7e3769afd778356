from .checkpoint import SAFE_GLOBALS, register_safe_globals
from .launch import init_cpu_dist

__all__ = ['SAFE_GLOBALS', 'register_safe_globals', 'init_cpu_dist']
