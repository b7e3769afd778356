from .data_preprocessors import MultiBranchDataPreprocessor  # noqa: F401
from .losses import *  # noqa: F401,F403
from .prompts import (ClassPromptLearner, load_prompt_file,  # noqa: F401
                      resolve_prompt_file)
from .pseudo_label import (AgreementFusion,  # noqa: F401
                           AnatomicalOrderRefiner, BaseFusion,
                           ConfidenceWeightedFusion, ProductFusion,
                           ReliabilityWeightedFusion)
from .segmentors import (CPS4VLM, CPS4SemiSegmentor,  # noqa: F401
                         SemiBaseSegmentor)
from .ssl_strategies import (BaseSSLStrategy,  # noqa: F401
                             BidirectionalCopyPaste, CrossPseudoSupervision,
                             FixMatch, MeanTeacher, SupervisedOnly, UniMatch)
from .text_encoders import HFTextEncoder  # noqa: F401
