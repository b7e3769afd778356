"""The MRSpineSeg class list, the anatomical order of spine units and the
default class colours.

Shared by the dataset converters (class tables of converted datasets) and
the synthetic spine generator, whose labels follow MRSpineSeg.
"""
import colorsys
from typing import List, Sequence, Tuple

#: MRSpineSeg classes; ``MRSPINESEG_CLASSES[v]`` is the name of source value v.
MRSPINESEG_CLASSES: Tuple[str, ...] = (
    'background', 'S', 'L5', 'L4', 'L3', 'L2', 'L1', 'T12', 'T11', 'T10', 'T9',
    'L5/S', 'L4/L5', 'L3/L4', 'L2/L3', 'L1/L2', 'T12/L1', 'T11/T12',
    'T10/T11', 'T9/T10')

_VERTEBRAE = ([f'C{i}' for i in range(1, 8)] + [f'T{i}' for i in range(1, 13)]
              + [f'L{i}' for i in range(1, 6)] + ['S'])

#: Spine units from superior to inferior: vertebrae (``C1`` ... ``L5``,
#: ``S``) with the disc between two neighbours (``T12/L1``, ``L5/S``).
SPINE_ORDER: Tuple[str, ...] = tuple(
    name for upper, lower in zip(_VERTEBRAE, _VERTEBRAE[1:] + [None])
    for name in ((upper, ) if lower is None else (upper, f'{upper}/{lower}')))


def anatomical_order(classes: Sequence[str]) -> List[int]:
    """Indices of the classes that are spine units, superior first.

    Args:
        classes (Sequence[str]): Class names in label order.

    Returns:
        list[int]: Indices into ``classes`` of the names found in
        :data:`SPINE_ORDER`, ordered from superior to inferior (empty when
        none is).
    """
    rank = {name: i for i, name in enumerate(SPINE_ORDER)}
    found = [i for i, c in enumerate(classes) if str(c) in rank]
    return sorted(found, key=lambda i: rank[str(classes[i])])


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
