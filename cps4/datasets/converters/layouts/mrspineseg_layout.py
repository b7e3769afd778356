"""The MRSpineSeg raw layout."""
from __future__ import annotations

from cps4.utils.fileio import PathLike

from ...spine_classes import MRSPINESEG_CLASSES
from ...volume_io import NIFTI_SUFFIXES, strip_suffix
from ..classes import ClassTable
from .base import DATASET_LAYOUTS, BaseLayout, CaseFiles, SourceDataset
from .utils import check_root, find_subdir, list_files, parse_classes


@DATASET_LAYOUTS.register_module(name='mrspineseg')
class MRSpineSegLayout(BaseLayout):
    """MRSpineSeg datasets: ``ROOT/MR/CaseN.nii.gz``, ``ROOT/Mask/...``.

    Images ``MR/CaseN.nii.gz`` are paired with masks
    ``Mask/mask_caseN.nii.gz`` ignoring letter case; the classes are
    :data:`MRSPINESEG_CLASSES`.

    Args:
        classes (str | Sequence[str], optional): New names for the 20
            MRSpineSeg classes.
    """

    name = 'mrspineseg'

    def find_cases(self, root: PathLike) -> SourceDataset:
        """Find the cases, ids taken from the image names.

        Args:
            root (str | PathLike): Folder holding ``MR`` and ``Mask``.

        Returns:
            SourceDataset: The cases.
        """
        root = check_root(root)
        mr_dir = find_subdir(root, 'MR')
        mask_dir = find_subdir(root, 'Mask', required=False)
        table = ClassTable.from_values(MRSPINESEG_CLASSES,
                                       range(len(MRSPINESEG_CLASSES)))
        names = parse_classes(self.classes)
        if names is not None:
            table = table.rename(names, 'MRSpineSeg')
        images = {
            strip_suffix(p.name, NIFTI_SUFFIXES).lower():
            (strip_suffix(p.name, NIFTI_SUFFIXES), p)
            for p in list_files(mr_dir, NIFTI_SUFFIXES)
        }
        masks = {}
        for p in list_files(mask_dir, NIFTI_SUFFIXES):
            key = strip_suffix(p.name, NIFTI_SUFFIXES).lower()
            if key.startswith('mask_'):
                key = key[len('mask_'):]
            masks[key] = p
        cases = []
        for key in sorted(set(images) | set(masks)):
            case_id, image = images.get(
                key, (key, mr_dir / f'{key}.nii.gz (any letter case)'))
            label = masks.get(
                key, (mask_dir or root / 'Mask') / f'mask_{key}.nii.gz')
            cases.append(CaseFiles(case_id, image, label))
        cases.sort(key=lambda c: c.case_id)
        return SourceDataset(
            name=root.name,
            layout=self.name,
            root=root,
            classes=table,
            cases=cases,
            label_hint=f'the MRSpineSeg label values 0..'
            f'{len(MRSPINESEG_CLASSES) - 1}; fix the mask')
