"""CPS4: text-guided semi-supervised spine segmentation on OpenMMLab.

Importing the package registers its datasets, transforms, models, metrics
and hooks into mmseg's registries (configs do it through
``custom_imports``) and allows the globals that mmengine checkpoints need
under ``torch.load(weights_only=True)``.
"""
from .utils import register_safe_globals

__version__ = '0.1.0'

register_safe_globals()

from . import (datasets, engine, evaluation, models, ops,  # noqa: E402,F401
               visualization)

__all__ = [
    '__version__', 'datasets', 'engine', 'evaluation', 'models', 'ops',
    'visualization'
]
