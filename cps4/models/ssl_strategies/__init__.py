from .base_ssl_strategy import BaseSSLStrategy
from .cross_pseudo_supervision import CrossPseudoSupervision
from .fix_match import FixMatch
from .mean_teacher import MeanTeacher
from .supervised_only import SupervisedOnly
from .uni_match import UniMatch

__all__ = [
    'BaseSSLStrategy', 'CrossPseudoSupervision', 'FixMatch', 'MeanTeacher',
    'SupervisedOnly', 'UniMatch'
]
