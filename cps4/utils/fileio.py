"""JSON files and the error of an unreadable dataset file.

Runtime code (datasets, metrics, hooks, inference, benchmarks) and the
converters share these, so they live apart from the converters.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Optional, Union

from .atomic_file import atomic_file

PathLike = Union[str, os.PathLike]


class DatasetFormatError(ValueError):
    """A source dataset is malformed: bad file, bad label values, bad shape.

    The message always names the offending file (relative to the dataset
    root where possible) or the offending key, and what to do about it.
    """


def read_json(path: PathLike, display: Optional[str] = None) -> Any:
    """Load a JSON file with a clear error for missing or invalid files.

    Args:
        path (str | PathLike): JSON file.
        display (str, optional): Name used in error messages.

    Returns:
        Any: The decoded JSON document.
    """
    path = Path(path)
    display = display or str(path)
    if not path.is_file():
        raise FileNotFoundError(f'{display}: file not found ({path})')
    try:
        with open(path, encoding='utf-8') as f:
            return json.load(f)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise DatasetFormatError(
            f'{display}: not valid JSON ({exc}); fix the file') from exc


def write_json_atomic(path: PathLike, obj: Any) -> None:
    """Write ``obj`` as indented JSON via a temporary file and ``os.replace``.

    A reader never sees a half-written file and an interrupted write leaves
    any previous version of ``path`` intact.

    Args:
        path (str | PathLike): Destination file; its folder must exist.
        obj (Any): JSON-serialisable object.
    """
    path = Path(path)
    with atomic_file(path, '.tmp') as tmp:
        with open(tmp, 'w', encoding='utf-8') as f:
            json.dump(obj, f, indent=2)
            f.write('\n')


def write_text_atomic(path: PathLike, text: str) -> None:
    """Write ``text`` via a temporary file and ``os.replace``, like
    :func:`write_json_atomic`: a reader never sees a half-written file.

    Args:
        path (str | PathLike): Destination file; its folder must exist.
        text (str): The file's content.
    """
    with atomic_file(Path(path), '.tmp') as tmp:
        with open(tmp, 'w', encoding='utf-8') as f:
            f.write(text)
