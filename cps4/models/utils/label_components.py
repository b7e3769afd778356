"""Connected components of label maps, per class (CPU, scipy.ndimage)."""
from typing import Tuple

import numpy as np
import torch
from scipy import ndimage
from torch import Tensor

#: 8-connectivity in 2D: pixels that touch at a corner belong together.
EIGHT_CONNECTED = np.ones((3, 3), dtype=bool)


def largest_component_share(labels: Tensor, num_classes: int
                            ) -> Tuple[Tensor, Tensor]:
    """Pixels in the largest connected component of each class, and all
    pixels of each class, summed over a batch of label maps.

    A class that covers one anatomical unit should form one region per
    slice; a map that splits a vertebra between two levels, or gives one
    level to two vertebrae, leaves a smaller share of the class in its
    largest component.

    Args:
        labels (Tensor): Label maps (B, H, W), integer; values outside
            ``[0, num_classes)`` are ignored.
        num_classes (int): K.

    Returns:
        tuple[Tensor, Tensor]: ``largest`` and ``total``, float64 (K,):
        per class, the summed size of its largest component in each map,
        and its summed pixel count.
    """
    maps = labels.detach().cpu().numpy()
    largest = np.zeros(num_classes)
    total = np.zeros(num_classes)
    for label_map in maps:
        counts = np.bincount(label_map[(label_map >= 0)
                                       & (label_map < num_classes)].ravel(),
                             minlength=num_classes)
        for k in np.flatnonzero(counts):
            components, n = ndimage.label(label_map == k, EIGHT_CONNECTED)
            sizes = np.bincount(components.ravel())[1:]
            largest[k] += sizes.max()
            total[k] += counts[k]
    return (torch.from_numpy(largest), torch.from_numpy(total))
