"""Prompt files: one JSON file per class set under ``configs/_base_/prompts/``.

A prompt file lists one entry per class, background included, in the
dataset's label order::

    {"classes": [{"name": "L4",                 # dataset class name
                  "phrase": "L4 vertebra",      # optional, default: name
                  "description": "the fourth lumbar vertebra, below L3 ...",
                  "synonyms": ["fourth lumbar vertebra"]},   # optional
                 ...],
     "templates": ["a sagittal T2 MR image of the {}.", ...]}

``name`` must match the dataset's ``metainfo['classes']``; ``phrase`` is
the noun phrase the templates are filled with (a bare "L4" is ambiguous
between the vertebra and the discs around it).
"""
import json
from pathlib import Path
from typing import Optional, Sequence, Union

REPO_ROOT = Path(__file__).resolve().parents[3]
PROMPT_DIR = Path('configs') / '_base_' / 'prompts'


def resolve_prompt_file(prompt_file: Union[str, Path]) -> Path:
    """Find a prompt file given absolutely, or relative to cwd / repo root.

    Args:
        prompt_file (str | Path): Path such as
            'configs/_base_/prompts/mrspineseg_19units.json'.

    Returns:
        Path: The existing file.
    """
    path = Path(prompt_file).expanduser()
    candidates = [path] if path.is_absolute() else [
        Path.cwd() / path, REPO_ROOT / path]
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    tried = ', '.join(str(c) for c in candidates)
    raise FileNotFoundError(
        f'Prompt file {str(prompt_file)!r} not found (tried {tried}). '
        f'Prompt files live in {PROMPT_DIR}/ (e.g. '
        f"{PROMPT_DIR / 'mrspineseg_19units.json'}).")


def load_prompt_file(prompt_file: Union[str, Path]) -> dict:
    """Read and validate a prompt file.

    Args:
        prompt_file (str | Path): See :func:`resolve_prompt_file`.

    Returns:
        dict: ``classes`` (list of dicts with ``name``, ``phrase``,
        ``description``, ``synonyms``), ``templates`` (list of str) and
        ``path`` (the resolved file).
    """
    path = resolve_prompt_file(prompt_file)
    with open(path, encoding='utf-8') as f:
        data = json.load(f)
    classes = data.get('classes') if isinstance(data, dict) else None
    if not classes:
        raise ValueError(f"Prompt file {path} has no 'classes' list.")
    parsed = []
    for i, entry in enumerate(classes):
        if not isinstance(entry, dict) or 'name' not in entry:
            raise ValueError(
                f"Prompt file {path}: class #{i} needs at least a 'name'.")
        name = str(entry['name'])
        parsed.append(dict(
            name=name,
            phrase=str(entry.get('phrase') or name),
            description=str(entry.get('description') or '').strip(),
            synonyms=[str(s) for s in entry.get('synonyms') or []]))
    names = [c['name'] for c in parsed]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ValueError(
            f'Prompt file {path} repeats class names {duplicates}.')
    templates = [str(t) for t in data.get('templates') or ['{}']]
    check_templates(templates, str(path))
    return dict(classes=parsed, templates=templates, path=path)


def check_templates(templates: Sequence[str], source: str) -> None:
    """Raise unless every template has exactly one '{}' placeholder.

    Args:
        templates (Sequence[str]): Templates such as 'an MRI of the {}.'.
        source (str): Where they come from, named in the error.
    """
    for template in templates:
        if template.count('{}') != 1:
            raise ValueError(
                f"Template {template!r} ({source}) must contain exactly one "
                f"'{{}}' placeholder for the class phrase.")


def find_matching_prompt_file(classes: Sequence[str]) -> Optional[Path]:
    """A prompt file of the repository defining exactly ``classes``."""
    folder = REPO_ROOT / PROMPT_DIR
    for path in sorted(folder.glob('*.json')):
        try:
            names = [c['name'] for c in load_prompt_file(path)['classes']]
        except (ValueError, KeyError, json.JSONDecodeError):
            continue
        if names == list(classes):
            return PROMPT_DIR / path.name
    return None
