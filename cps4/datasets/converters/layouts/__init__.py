"""Raw dataset layouts, one registered class per file.

* ``nnunet``: :class:`NnUNetLayout` (nnU-Net v1/v2 raw, MSD).
* ``mrspineseg``: :class:`MRSpineSegLayout`.
* ``spider``: :class:`SpiderLayout` (SPIDER, mapped to the MRSpineSeg
  classes; see :mod:`.spider_layout` for the assumption).
* ``png2d``: :class:`Png2DLayout` (2D images, one slice per case).
"""
import inspect
from typing import Union

from .base import (DATASET_LAYOUTS, BaseLayout, CaseFiles, SourceDataset,
                   add_unlabelled_cases, check_case_files, select_cases)
# imported (so registered) in the order of LAYOUTS
from .nnunet_layout import NnUNetLayout
from .mrspineseg_layout import MRSpineSegLayout
from .spider_layout import (SPIDER_SEQUENCES, SpiderLayout, load_label_map,
                            spider_class_table)
from .png2d_layout import Png2DLayout

#: Supported layout names.
LAYOUTS = tuple(DATASET_LAYOUTS.module_dict)


def build_layout(layout: Union[str, BaseLayout], **options) -> BaseLayout:
    """Build a layout from its name and the options given.

    Args:
        layout (str | BaseLayout): A name of :data:`LAYOUTS` or a layout.
        **options: Layout arguments (e.g. ``classes``, ``sequence``,
            ``label_map``); those that are None are left at the layout's
            default.

    Returns:
        BaseLayout: The layout.

    Raises:
        ValueError: Unknown layout, or an option the layout does not take.
    """
    if isinstance(layout, BaseLayout):
        return layout
    if layout not in DATASET_LAYOUTS.module_dict:
        raise ValueError(f'unknown layout {layout!r}; known layouts: '
                         f'{", ".join(LAYOUTS)}')
    cls = DATASET_LAYOUTS.module_dict[layout]
    kwargs = {k: v for k, v in options.items() if v is not None}
    for key in kwargs:
        if key not in inspect.signature(cls).parameters:
            takers = [
                name for name, other in DATASET_LAYOUTS.module_dict.items()
                if key in inspect.signature(other).parameters
            ]
            raise ValueError(f'{key} is only supported for the '
                             f'{", ".join(takers)} layout, not {layout!r}')
    return cls(**kwargs)


__all__ = [
    'DATASET_LAYOUTS', 'LAYOUTS', 'build_layout', 'BaseLayout', 'CaseFiles',
    'SourceDataset', 'select_cases', 'check_case_files',
    'add_unlabelled_cases', 'NnUNetLayout',
    'MRSpineSegLayout', 'SpiderLayout', 'Png2DLayout', 'SPIDER_SEQUENCES',
    'load_label_map', 'spider_class_table'
]
