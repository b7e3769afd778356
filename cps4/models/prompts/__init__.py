"""Class prompts and prompt learners."""
from .class_prompt_learner import (ClassPromptLearner,
                                   find_matching_prompt_file,
                                   load_prompt_file, resolve_prompt_file)

__all__ = [
    'ClassPromptLearner', 'find_matching_prompt_file', 'load_prompt_file',
    'resolve_prompt_file'
]
