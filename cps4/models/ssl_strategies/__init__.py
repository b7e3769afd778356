from .base_ssl_strategy import BaseSSLStrategy
from .bidirectional_copy_paste import BidirectionalCopyPaste
from .cross_pseudo_supervision import CrossPseudoSupervision
from .fix_match import FixMatch
from .mean_teacher import MeanTeacher
from .semi_networks import LabelledBatch, SemiNetworks
from .supervised_only import SupervisedOnly
from .uni_match import UniMatch

__all__ = [
    'BaseSSLStrategy', 'BidirectionalCopyPaste', 'CrossPseudoSupervision',
    'FixMatch', 'LabelledBatch', 'MeanTeacher', 'SemiNetworks',
    'SupervisedOnly', 'UniMatch'
]
