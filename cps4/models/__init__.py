from .losses import *  # noqa: F401,F403
from .prompts import (ClassPromptLearner, load_prompt_file,  # noqa: F401
                      resolve_prompt_file)
from .segmentors import CPS4VLM  # noqa: F401
from .text_encoders import HFTextEncoder  # noqa: F401
