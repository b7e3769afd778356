from .agreement_fusion import AgreementFusion
from .anatomical_order_refiner import AnatomicalOrderRefiner
from .base_fusion import BaseFusion
from .confidence_weighted_fusion import ConfidenceWeightedFusion
from .product_fusion import ProductFusion
from .reliability_weighted_fusion import ReliabilityWeightedFusion

__all__ = [
    'AnatomicalOrderRefiner', 'BaseFusion', 'AgreementFusion',
    'ConfidenceWeightedFusion', 'ProductFusion', 'ReliabilityWeightedFusion'
]
