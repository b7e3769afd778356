from .cps4_semi_segmentor import CPS4SemiSegmentor
from .cps4_vlm import CPS4VLM
from .semi_base_segmentor import SemiBaseSegmentor

__all__ = [
    'CPS4VLM', 'CPS4SemiSegmentor', 'SemiBaseSegmentor'
]
