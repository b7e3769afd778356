from .agreement_fusion import AgreementFusion
from .base_fusion import BaseFusion
from .confidence_weighted_fusion import ConfidenceWeightedFusion
from .product_fusion import ProductFusion

__all__ = [
    'BaseFusion', 'AgreementFusion', 'ConfidenceWeightedFusion',
    'ProductFusion'
]
