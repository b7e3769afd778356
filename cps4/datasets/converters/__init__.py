"""Dataset converters: raw spine MR layouts -> 2D PNG slices + case splits.

Entry points:

* :func:`convert_dataset` converts a dataset of one of the registered
  layouts (:data:`LAYOUTS`: nnU-Net/MSD, MRSpineSeg, SPIDER, 2D PNG; see
  :mod:`.layouts`) into ``OUT/images``, ``OUT/labels``, ``OUT/meta.json``
  and ``OUT/splits``.
* :func:`load_case_volume` / :func:`reassemble_volume` put slices back into
  volumes.
* :func:`make_split`, :func:`write_split`, :func:`write_splits` and
  :func:`load_split` handle case-level splits.

The run-time helpers the converters share with datasets, metrics and
inference live outside this package (:mod:`cps4.datasets.volume_io`,
:mod:`cps4.datasets.intensity`, :mod:`cps4.datasets.meta`,
:mod:`cps4.datasets.splits`); they are re-exported here for convenience.
"""
from cps4.utils.fileio import DatasetFormatError

from ..intensity import (INTENSITY_PERCENTILES, apply_intensity_window,
                         intensity_window, normalize_intensity)
from ..meta import class_to_source_values, read_meta, reassemble_volume
from ..spine_classes import (DEFAULT_PALETTE, MRSPINESEG_CLASSES,
                             default_palette)
from ..splits import (DEFAULT_LABEL_RATIOS, DEFAULT_SPLIT_SEEDS,
                      check_label_ratio, format_pct, load_split, make_split,
                      split_filename, validate_split, write_split,
                      write_splits)
from ..volume_io import (ITK_SUFFIXES, NIFTI_SUFFIXES, Volume,
                         choose_slice_axis, read_volume, read_volume_header,
                         strip_suffix, volume_suffix, write_nifti,
                         write_volume_like)
from .classes import SPIDER_DEFAULT_LABEL_MAP, ClassTable
from .convert import FORMAT_VERSION, convert_dataset
from .io import read_image_2d
from .layouts import (DATASET_LAYOUTS, LAYOUTS, SPIDER_SEQUENCES,
                      BaseLayout, CaseFiles, MRSpineSegLayout, NnUNetLayout,
                      Png2DLayout, SourceDataset, SpiderLayout, build_layout,
                      load_label_map, spider_class_table)
from .slicing import load_case_volume, slice_name

__all__ = [
    # conversion
    'convert_dataset', 'LAYOUTS', 'FORMAT_VERSION', 'DatasetFormatError',
    # layouts and classes
    'DATASET_LAYOUTS', 'build_layout', 'BaseLayout', 'NnUNetLayout',
    'MRSpineSegLayout', 'SpiderLayout', 'Png2DLayout', 'CaseFiles',
    'SourceDataset', 'SPIDER_SEQUENCES', 'load_label_map',
    'spider_class_table', 'ClassTable', 'MRSPINESEG_CLASSES',
    'SPIDER_DEFAULT_LABEL_MAP', 'DEFAULT_PALETTE', 'default_palette',
    # volume I/O
    'Volume', 'read_volume', 'read_volume_header', 'read_image_2d',
    'write_volume_like', 'write_nifti', 'volume_suffix', 'strip_suffix',
    'NIFTI_SUFFIXES', 'ITK_SUFFIXES',
    # slicing and reassembly
    'INTENSITY_PERCENTILES', 'slice_name', 'choose_slice_axis',
    'intensity_window', 'apply_intensity_window', 'normalize_intensity',
    'reassemble_volume', 'load_case_volume', 'read_meta',
    'class_to_source_values',
    # splits
    'DEFAULT_SPLIT_SEEDS', 'DEFAULT_LABEL_RATIOS', 'make_split',
    'write_split', 'write_splits', 'load_split', 'validate_split',
    'split_filename', 'format_pct', 'check_label_ratio'
]
