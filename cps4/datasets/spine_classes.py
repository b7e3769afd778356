"""The MRSpineSeg class list and the default class colours.

Shared by the dataset converters (class tables of converted datasets) and
the synthetic spine generator, whose labels follow MRSpineSeg.
"""
import colorsys
from typing import List, Tuple

#: MRSpineSeg classes; ``MRSPINESEG_CLASSES[v]`` is the name of source value v.
MRSPINESEG_CLASSES: Tuple[str, ...] = (
    'background', 'S', 'L5', 'L4', 'L3', 'L2', 'L1', 'T12', 'T11', 'T10', 'T9',
    'L5/S', 'L4/L5', 'L3/L4', 'L2/L3', 'L1/L2', 'T12/L1', 'T11/T12',
    'T10/T11', 'T9/T10')

#: Fixed colours, background first; extended deterministically when needed.
DEFAULT_PALETTE: Tuple[Tuple[int, int, int], ...] = (
    (0, 0, 0), (230, 25, 75), (60, 180, 75), (255, 225, 25), (0, 130, 200),
    (245, 130, 48), (145, 30, 180), (70, 240, 240), (240, 50, 230),
    (210, 245, 60), (250, 190, 212), (0, 128, 128), (220, 190, 255),
    (170, 110, 40), (255, 250, 200), (128, 0, 0), (170, 255, 195),
    (128, 128, 0), (255, 215, 180), (0, 0, 128), (128, 128, 128))


def default_palette(num_classes: int) -> List[List[int]]:
    """Return ``num_classes`` fixed RGB colours, background black.

    Args:
        num_classes (int): Number of classes.

    Returns:
        list[list[int]]: One ``[r, g, b]`` per class.
    """
    colours = [list(c) for c in DEFAULT_PALETTE[:num_classes]]
    for i in range(len(colours), num_classes):
        # Golden-ratio hue steps give well separated, reproducible colours.
        hue = (i * 0.618033988749895) % 1.0
        r, g, b = colorsys.hsv_to_rgb(hue, 0.65, 0.95)
        colours.append([int(round(r * 255)), int(round(g * 255)),
                        int(round(b * 255))])
    return colours
