"""Class prompts and prompt learners."""
from .class_prompt_learner import (ClassPromptLearner, load_prompt_file,
                                   resolve_prompt_file)

__all__ = ['ClassPromptLearner', 'load_prompt_file', 'resolve_prompt_file']
