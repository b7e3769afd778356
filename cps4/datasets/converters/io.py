"""Reading and writing of the 2D images of the converters.

Volumes are read and written by :mod:`cps4.datasets.volume_io` (shared with
inference); this module reads the 2D source images of the ``png2d`` layout
and writes and reads the 8-bit PNG slices of a converted dataset.
"""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import numpy as np

from cps4.utils.fileio import DatasetFormatError, PathLike

from ..volume_io import (as_integer_labels, require_file,
                         unreadable_file_error)

__all__ = ['read_image_2d', 'write_png', 'read_png']


def read_image_2d(path: PathLike,
                  display: Optional[str] = None,
                  is_label: bool = False) -> np.ndarray:
    """Read a 2D image with Pillow.

    Colour images whose channels are all equal are reduced to one channel;
    other colour images are converted to luminance (images) or refused
    (labels, which must hold class values, not colours).

    Args:
        path (str | PathLike): Image file.
        display (str, optional): Name used in error messages.
        is_label (bool): Return integer label values (palette images give
            their palette indices). Defaults to False.

    Returns:
        np.ndarray: 2D array, float32 for images, integers for labels.

    Raises:
        FileNotFoundError: The file does not exist.
        DatasetFormatError: The file is unreadable or a colour label map.
    """
    from PIL import Image
    path = Path(path)
    display = display or str(path)
    require_file(path, display)
    try:
        with Image.open(path) as img:
            img.load()
            arr = np.asarray(img)
            mode = img.mode
            if arr.ndim == 3:
                colour = arr[..., :3] if arr.shape[-1] >= 3 else arr[..., :1]
                if np.all(colour == colour[..., :1]):
                    arr = colour[..., 0]
                elif is_label:
                    raise DatasetFormatError(
                        f'{display}: label image is in colour (mode {mode}); '
                        'store labels as single-channel class values '
                        '(mode L or P)')
                else:
                    arr = np.asarray(img.convert('L'))
    except DatasetFormatError:
        raise
    except Exception as exc:  # noqa: BLE001 - any reader failure
        raise unreadable_file_error(display, exc) from exc
    if arr.ndim != 2:
        raise DatasetFormatError(
            f'{display}: expected a 2D image, got shape {list(arr.shape)}')
    if is_label:
        return as_integer_labels(arr, display)
    return arr.astype(np.float32)


def write_png(path: PathLike, array: np.ndarray) -> None:
    """Write a 2D uint8 array as an 8-bit grayscale PNG.

    Args:
        path (str | PathLike): Destination file.
        array (np.ndarray): 2D uint8 array.
    """
    from PIL import Image
    if array.ndim != 2 or array.dtype != np.uint8:
        raise ValueError('write_png expects a 2D uint8 array, got '
                         f'{array.dtype} with shape {list(array.shape)}')
    Image.fromarray(np.ascontiguousarray(array), mode='L').save(str(path))


def read_png(path: PathLike) -> np.ndarray:
    """Read a PNG written by :func:`write_png` back as a 2D uint8 array.

    Args:
        path (str | PathLike): PNG file.

    Returns:
        np.ndarray: 2D uint8 array.
    """
    from PIL import Image
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f'{path}: slice not found; the converted '
                                'folder is incomplete, convert it again')
    with Image.open(path) as img:
        return np.array(img, dtype=np.uint8)
