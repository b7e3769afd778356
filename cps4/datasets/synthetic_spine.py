# Copyright (c) CPS4 contributors. All rights reserved.
"""Former home of the synthetic spine generator, see
:mod:`cps4.datasets.synthetic`; the public names stay importable here."""
from .synthetic import (GENERATOR_VERSION, SPINE_CLASSES, SPINE_PALETTE,
                        generate_case, write_synthetic_dataset)

__all__ = [
    'SPINE_CLASSES', 'SPINE_PALETTE', 'GENERATOR_VERSION', 'generate_case',
    'write_synthetic_dataset'
]
