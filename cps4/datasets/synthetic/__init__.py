# Copyright (c) CPS4 contributors. All rights reserved.
"""Procedural generator of synthetic sagittal lumbar spine MR volumes.

The generator draws T2-weighted-like sagittal MR stacks of the lower thoracic
and lumbar spine together with a label map that follows the MRSpineSeg
convention: 10 vertebrae (S, L5 ... T9) and the 9 intervertebral discs
between them (L5/S ... T9/T10), 19 foreground classes plus background.

Every case is built from a small anatomical model expressed in millimetres:

* a smooth curved column (sacral slope, lumbar lordosis, thoracic kyphosis)
  on which vertebral bodies and discs are stacked from the sacrum upwards;
* vertebral bodies with a dark cortical rim, concave endplates and textured
  marrow; discs with a dark annulus and a bright nucleus; posterior elements
  (pedicles, laminae, articular pillars, spinous processes) that belong to
  their vertebra; the spinal canal with CSF, cord / cauda equina and
  foramina; paraspinal muscles, fat, vessels and abdominal viscera around;
* acquisition effects: slice positions, partial volume blur, a smooth
  multiplicative bias field with a posterior surface-coil profile and
  Rician noise.

All vertebrae share one appearance distribution and so do all discs, so the
identity of a unit can only be inferred from its position counted from the
sacrum. The field of view, unit sizes, curvature, contrast, number of
sagittal slices and lateral position vary per case, and the top visible
unit ranges from T11 to T9 so that some classes are absent in some cases.

Array convention: volumes are ``(H, W, S)`` arrays with rows running from
superior to inferior, columns from anterior to posterior and the sagittal
slices along the last axis (patient left to right). Spacing is reported as
``(row, column, slice)`` millimetres. The in-plane spacing is derived from
the anatomical field of view (about 270-380 mm tall), so it scales with the
requested image size: about 1.4-2 mm for 192 rows, 0.5-0.75 mm for 512 rows.

Modules: :mod:`.params` (classes, constants, per-case parameters),
:mod:`.anatomy` (drawn anatomy and tissue appearance), :mod:`.geometry`
(centreline, field of view, voxel coordinates), :mod:`.textures` (random
texture fields), :mod:`.render` (painting the tissues and labels,
:func:`generate_case`), :mod:`.acquisition` (blur, bias field, noise) and
:mod:`.writer` (:func:`write_synthetic_dataset`).

Example:
    >>> from cps4.datasets.synthetic import generate_case
    >>> image, label, spacing = generate_case(0)
    >>> image.shape[:2], label.max() <= 19
    ((192, 192), True)
"""
from .anatomy import Anatomy, Appearance, sample_anatomy, sample_appearance
from .params import (GENERATOR_VERSION, SPINE_CLASSES, SPINE_PALETTE,
                     CaseParams, disc_label, vertebra_label)
from .render import generate_case
from .writer import GENERATOR_ID, write_synthetic_dataset

__all__ = [
    'SPINE_CLASSES', 'SPINE_PALETTE', 'GENERATOR_VERSION', 'GENERATOR_ID',
    'CaseParams', 'Anatomy', 'Appearance', 'sample_anatomy',
    'sample_appearance', 'vertebra_label', 'disc_label', 'generate_case',
    'write_synthetic_dataset'
]
