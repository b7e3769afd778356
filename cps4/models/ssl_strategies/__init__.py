from .base_ssl_strategy import BaseSSLStrategy
from .cross_pseudo_supervision import CrossPseudoSupervision
from .fix_match import FixMatch
from .mean_teacher import MeanTeacher
from .semi_networks import SemiNetworks
from .supervised_only import SupervisedOnly
from .uni_match import UniMatch

__all__ = [
    'BaseSSLStrategy', 'CrossPseudoSupervision', 'FixMatch', 'MeanTeacher',
    'SemiNetworks', 'SupervisedOnly', 'UniMatch'
]
