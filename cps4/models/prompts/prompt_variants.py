"""Paraphrased prompts for a trained model: load variants, apply one.

A variant file lists prompt changes to evaluate a trained stage-1 model
under, without retraining (``tools/analysis/prompt_sensitivity.py``)::

    {"variants": [
        {"name": "as trained"},
        {"name": "phrase only", "style": "name"},
        {"name": "with descriptions", "style": "description"},
        {"name": "with synonyms", "use_synonyms": true},
        {"name": "plain templates", "templates": ["{}", "an MRI of the {}."]},
        {"name": "ordinal words",
         "phrases": {"L1": "first lumbar vertebral body", ...}}]}

Keys besides ``name``: ``style`` (``name``/``template``/``description``),
``templates``, ``use_synonyms``, and per-class ``phrases``,
``descriptions`` and ``synonyms`` keyed by class name. A model trained with
learnable context vectors keeps them; only its phrases can change.
"""
import copy
import json
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, List, Union

from .class_prompt_learner import ClassPromptLearner
from .prompt_file import check_templates

VARIANT_KEYS = ('name', 'style', 'templates', 'use_synonyms', 'phrases',
                'descriptions', 'synonyms')
PER_CLASS = {'phrases': 'phrase', 'descriptions': 'description',
             'synonyms': 'synonyms'}


def load_prompt_variants(path: Union[str, Path]) -> List[dict]:
    """Read and check a variant file.

    Raises:
        FileNotFoundError: No such file.
        ValueError: Not a ``{"variants": [...]}`` file, unknown keys,
            unnamed or repeated variants, or a bad template.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f'prompt variant file not found: {path}')
    try:
        data = json.loads(path.read_text(encoding='utf-8'))
    except json.JSONDecodeError as exc:
        raise ValueError(f'{path}: not valid JSON ({exc})') from exc
    variants = data.get('variants') if isinstance(data, dict) else None
    if not variants or not isinstance(variants, list):
        raise ValueError(f'{path}: expected {{"variants": [{{"name": ...}}, '
                         '...]}}')
    names = []
    for i, v in enumerate(variants):
        if not isinstance(v, dict) or not v.get('name'):
            raise ValueError(f'{path}: variant #{i} needs a "name"')
        unknown = sorted(set(v) - set(VARIANT_KEYS))
        if unknown:
            raise ValueError(f'{path}: variant {v["name"]!r} has unknown '
                             f'key(s) {unknown}; known: {list(VARIANT_KEYS)}')
        if 'templates' in v:
            check_templates(v['templates'], f'{path}, {v["name"]!r}')
        names.append(v['name'])
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise ValueError(f'{path}: variant names {dupes} repeat')
    return variants


@contextmanager
def prompt_variant(learner: ClassPromptLearner,
                   variant: dict) -> Iterator[ClassPromptLearner]:
    """Apply ``variant`` to ``learner`` inside the ``with`` block.

    The learner's style, templates, synonym switch and class entries are
    restored on exit, also after an error.

    Raises:
        ValueError: Classes the learner does not have, a style change of a
            learnable-context model, or an unknown style.
    """
    saved = (learner.style, list(learner.templates), learner.use_synonyms,
             copy.deepcopy(learner.classes))
    try:
        style = variant.get('style', learner.style)
        if style != learner.style and 'learnable' in (style, learner.style):
            raise ValueError(
                f'variant {variant["name"]!r}: a model trained with '
                f"style={learner.style!r} cannot switch to {style!r}; vary "
                'its phrases instead')
        if style not in ('name', 'template', 'description', 'learnable'):
            raise ValueError(f'variant {variant["name"]!r}: unknown style '
                             f'{style!r}')
        learner.style = style
        learner.templates = list(variant.get('templates', learner.templates))
        learner.use_synonyms = bool(
            variant.get('use_synonyms', learner.use_synonyms))
        by_name = {c['name']: c for c in learner.classes}
        for key, field in PER_CLASS.items():
            for name, value in (variant.get(key) or {}).items():
                if name not in by_name:
                    raise ValueError(
                        f'variant {variant["name"]!r}: {key} names class '
                        f'{name!r}, not one of {list(by_name)}')
                by_name[name][field] = (list(value) if field == 'synonyms'
                                        else str(value))
        yield learner
    finally:
        (learner.style, learner.templates, learner.use_synonyms,
         learner.classes) = saved
