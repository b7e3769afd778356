"""Load the hidden label of an unlabelled slice, when it has one."""
from mmseg.datasets.transforms import LoadAnnotations
from mmseg.registry import TRANSFORMS


@TRANSFORMS.register_module()
class LoadHiddenAnnotations(LoadAnnotations):
    """``LoadAnnotations`` for the unlabelled pool of semi-supervised data.

    In a benchmark the unlabelled slices are labelled ones whose labels are
    hidden from training; they are loaded only to log the Dice of the
    pseudo labels (``pl_dice_*``). A user's own unlabelled volumes have no
    mask at all: their samples come without ``seg_map_path`` and pass
    through unchanged, so a batch holding one of them logs no pseudo-label
    Dice. Arguments as :class:`mmseg.datasets.transforms.LoadAnnotations`.
    """

    def transform(self, results: dict) -> dict:
        if results.get('seg_map_path') is None:
            results.setdefault('seg_fields', [])
            return results
        return super().transform(results)
