# Copyright (c) CPS4 contributors. All rights reserved.
"""Classes, constants and per-case acquisition parameters of the generator."""
from dataclasses import dataclass
from typing import List, Optional, Tuple

import numpy as np

from ..spine_classes import MRSPINESEG_CLASSES, default_palette

#: Classes of the generated labels (the MRSpineSeg list): 10 vertebrae
#: (S, L5 ... T9) and the 9 discs between them (L5/S ... T9/T10).
SPINE_CLASSES: Tuple[str, ...] = MRSPINESEG_CLASSES
#: Display colour per class.
SPINE_PALETTE: List[List[int]] = default_palette(len(SPINE_CLASSES))

#: Version of the generator recorded in ``dataset.json``. Bump it whenever
#: the generated data changes for a given seed.
GENERATOR_VERSION = 1

SACRUM_LABEL = 1
NUM_LABELLED_LEVELS = 9  # labelled mobile vertebrae L5 ... T9
# Two more unlabelled levels (T8, T7) are modelled so that anatomy continues
# above T9 when the field of view reaches that high, as in real scans.
NUM_LEVELS = 11


def vertebra_label(level: int) -> int:
    """Label of the mobile vertebra ``level`` (0 = L5 ... 8 = T9, else 0)."""
    return level + 2 if level < NUM_LABELLED_LEVELS else 0


def disc_label(level: int) -> int:
    """Label of the disc below vertebra ``level`` (0 = L5/S, 0 above T9)."""
    return level + 11 if level < NUM_LABELLED_LEVELS else 0


@dataclass(frozen=True)
class CaseParams:
    """Acquisition parameters of one case.

    Attributes:
        height (int): Rows (superior to inferior).
        width (int): Columns (anterior to posterior).
        num_slices (int): Number of sagittal slices.
        slice_spacing (float): Slice spacing in mm.
        label_posterior_elements (bool): Whether pedicles, laminae and
            processes carry the label of their vertebra (as in MRSpineSeg)
            or are left as background.
    """

    height: int
    width: int
    num_slices: int
    slice_spacing: float
    label_posterior_elements: bool = True

    @property
    def shape(self) -> Tuple[int, int, int]:
        """``(H, W, S)`` shape of the volume."""
        return (self.height, self.width, self.num_slices)

    @classmethod
    def draw(cls,
             rng: np.random.Generator,
             image_size: Tuple[int, int],
             num_slices: Optional[int] = None,
             slice_spacing: Optional[float] = None,
             label_posterior_elements: bool = True) -> 'CaseParams':
        """Check the given parameters and draw the missing ones.

        Args:
            rng (np.random.Generator): Random generator (the first draws of
                a case).
            image_size (tuple[int, int]): ``(H, W)`` in-plane size.
            num_slices (int, optional): Drawn from ``[9, 17]`` when None.
            slice_spacing (float, optional): Drawn from ``[3.0, 4.5]`` mm
                when None.
            label_posterior_elements (bool): See the class attributes.

        Returns:
            CaseParams: The parameters.
        """
        height, width = (int(v) for v in image_size)
        if height < 16 or width < 16:
            raise ValueError(f'image_size too small: {image_size}')
        if num_slices is None:
            num_slices = int(rng.integers(9, 18))
        if num_slices < 1:
            raise ValueError(f'num_slices must be positive, got {num_slices}')
        if slice_spacing is None:
            slice_spacing = float(rng.uniform(3.0, 4.5))
        return cls(height, width, int(num_slices), float(slice_spacing),
                   label_posterior_elements)
