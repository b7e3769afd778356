"""Class prompts and prompt learners."""
from .class_prompt_learner import ClassPromptLearner
from .prompt_file import (find_matching_prompt_file, load_prompt_file,
                          resolve_prompt_file)
from .prompt_variants import load_prompt_variants, prompt_variant

__all__ = [
    'ClassPromptLearner', 'find_matching_prompt_file', 'load_prompt_file',
    'resolve_prompt_file', 'load_prompt_variants', 'prompt_variant'
]
