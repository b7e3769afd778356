from .agreement_fusion import AgreementFusion
from .base_fusion import BaseFusion
from .confidence_weighted_fusion import ConfidenceWeightedFusion
from .product_fusion import ProductFusion
from .reliability_weighted_fusion import ReliabilityWeightedFusion

__all__ = [
    'BaseFusion', 'AgreementFusion', 'ConfidenceWeightedFusion',
    'ProductFusion', 'ReliabilityWeightedFusion'
]
