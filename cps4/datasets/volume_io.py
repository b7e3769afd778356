"""Reading and writing of 3D volumes (NIfTI, MetaImage, NRRD).

Used at run time (inference, prediction dumps, the synthetic generator) and
by the dataset converters. Volumes are read with nibabel (``.nii``/
``.nii.gz``) or SimpleITK (``.mha``, ``.mhd``, ``.nrrd`` and anything else
SimpleITK understands) and returned as a :class:`Volume` holding the array in
the *array-axis order of the reader* together with the voxel spacing in the
same order and a 4x4 affine that maps array indices to RAS+ world coordinates
in millimetres (the NIfTI convention; ITK's LPS direction cosines are
converted).

Every failure is reported as a :class:`DatasetFormatError` (a ``ValueError``)
or ``FileNotFoundError`` whose message names the offending file and says what
to do about it.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Sequence, Tuple

import numpy as np

from cps4.utils.atomic_file import atomic_file
from cps4.utils.fileio import DatasetFormatError, PathLike

NIFTI_SUFFIXES = ('.nii.gz', '.nii')
ITK_SUFFIXES = ('.mha', '.mhd', '.nrrd', '.nhdr')
IMAGE_2D_SUFFIXES = ('.png', '.jpg', '.jpeg', '.bmp', '.tif', '.tiff')


@dataclass
class Volume:
    """A 3D array with its geometry.

    Attributes:
        data (np.ndarray): The 3D array, in the reader's array-axis order.
        spacing (tuple[float, float, float]): Voxel size in mm per array axis.
        affine (np.ndarray): 4x4 matrix mapping array indices to RAS+ mm.
    """

    data: np.ndarray
    spacing: Tuple[float, float, float]
    affine: np.ndarray


@dataclass
class VolumeHeader:
    """Shape and spacing of a volume, read without loading its voxels.

    Attributes:
        shape (tuple[int, int, int]): Array shape in array-axis order.
        spacing (tuple[float, float, float]): Voxel size in mm per array axis.
        affine (np.ndarray, optional): 4x4 matrix mapping array indices to
            RAS+ mm, as :attr:`Volume.affine`.
    """

    shape: Tuple[int, int, int]
    spacing: Tuple[float, float, float]
    affine: Optional[np.ndarray] = None


def strip_suffix(name: str, suffixes=NIFTI_SUFFIXES + ITK_SUFFIXES +
                 IMAGE_2D_SUFFIXES) -> str:
    """Remove a known (possibly double, e.g. ``.nii.gz``) file suffix.

    Args:
        name (str): A file name.
        suffixes (tuple[str]): Suffixes to try, longest first where they
            overlap. Matching is case-insensitive.

    Returns:
        str: ``name`` without its suffix, or unchanged when none matches.
    """
    lower = name.lower()
    for suffix in suffixes:
        if lower.endswith(suffix):
            return name[:-len(suffix)]
    return name


def _is_nifti(path: Path) -> bool:
    return path.name.lower().endswith(NIFTI_SUFFIXES)


def require_file(path: Path, display: str) -> None:
    """Raise ``FileNotFoundError`` naming ``display`` if ``path`` is absent.

    Args:
        path (Path): File that must exist.
        display (str): Name used in the error message.
    """
    if not path.is_file():
        raise FileNotFoundError(
            f'{display}: file not found ({path}); add the missing file or '
            'remove the case from the dataset')


def unreadable_file_error(display: str,
                          exc: BaseException) -> DatasetFormatError:
    """The error for a file that a reader failed on.

    Args:
        display (str): Name of the file in the message.
        exc (BaseException): The reader's exception.

    Returns:
        DatasetFormatError: The error to raise (from ``exc``).
    """
    return DatasetFormatError(
        f'{display}: cannot read the file ({type(exc).__name__}: {exc}); it '
        'is probably truncated or not a valid image file, re-export or '
        're-download it')


def _as_3d_shape(shape, display: str) -> Tuple[int, int, int]:
    """Check that ``shape`` is 3D, allowing trailing singleton dimensions."""
    shape = tuple(int(s) for s in shape)
    while len(shape) > 3 and shape[-1] == 1:
        shape = shape[:-1]
    if len(shape) != 3:
        hint = (" (use the 'png2d' layout for 2D images)"
                if len(shape) == 2 else '')
        raise DatasetFormatError(
            f'{display}: expected a 3D volume but the array has shape '
            f'{list(shape)}{hint}; provide one 3D volume per case')
    return shape


def _check_geometry(spacing, affine, display: str) -> None:
    """Refuse a header whose spacing or affine is not finite and positive."""
    spacing = np.asarray(spacing, dtype=np.float64)
    if not np.all(np.isfinite(spacing)) or np.any(spacing <= 0):
        raise DatasetFormatError(
            f'{display}: voxel spacing {spacing.tolist()} is not finite and '
            'positive; fix the file header (NIfTI pixdim / ITK spacing)')
    if affine is not None and not np.all(np.isfinite(affine)):
        raise DatasetFormatError(
            f'{display}: the affine of the header holds NaN or Inf; fix the '
            'file header (NIfTI sform/qform / ITK origin and direction)')


def _sitk():
    try:
        import SimpleITK as sitk
    except ImportError as exc:  # pragma: no cover - optional dependency
        raise ImportError('SimpleITK is required to read .mha/.mhd/.nrrd '
                          'files: pip install SimpleITK') from exc
    return sitk


def _itk_affine(direction, spacing, origin) -> np.ndarray:
    """Affine from (z, y, x) array indices to RAS+ mm for an ITK image."""
    ndim = len(spacing)
    direction = np.asarray(direction, dtype=np.float64).reshape(ndim, ndim)
    lps = direction * np.asarray(spacing, dtype=np.float64)[None, :]
    affine = np.eye(4)
    # ITK index order is (x, y, z); the numpy array order is (z, y, x).
    affine[:3, :3] = lps[:3, :3][:, ::-1]
    affine[:3, 3] = np.asarray(origin, dtype=np.float64)[:3]
    return np.diag([-1.0, -1.0, 1.0, 1.0]) @ affine


def read_volume_header(path: PathLike,
                       display: Optional[str] = None) -> VolumeHeader:
    """Read the shape and spacing of a volume without loading the voxels.

    Args:
        path (str | PathLike): Volume file.
        display (str, optional): Name used in error messages. Defaults to
            the path.

    Returns:
        VolumeHeader: 3D shape and spacing in array-axis order.

    Raises:
        FileNotFoundError: The file does not exist.
        DatasetFormatError: The file is unreadable or not 3D.
    """
    path = Path(path)
    display = display or str(path)
    require_file(path, display)
    try:
        if _is_nifti(path):
            import nibabel as nib
            img = nib.load(str(path))
            header = img.header
            shape = header.get_data_shape()
            zooms = header.get_zooms()
            affine = np.asarray(img.affine, dtype=np.float64)
        else:
            sitk = _sitk()
            reader = sitk.ImageFileReader()
            reader.SetFileName(str(path))
            reader.ReadImageInformation()
            if reader.GetNumberOfComponents() != 1:
                raise DatasetFormatError(
                    f'{display}: has {reader.GetNumberOfComponents()} '
                    'components per voxel; provide a scalar volume')
            shape = tuple(reversed(reader.GetSize()))
            zooms = tuple(reversed(reader.GetSpacing()))
            affine = (_itk_affine(reader.GetDirection(), reader.GetSpacing(),
                                  reader.GetOrigin())
                      if len(reader.GetSize()) >= 3 else None)
    except DatasetFormatError:
        raise
    except Exception as exc:  # noqa: BLE001 - any reader failure
        raise unreadable_file_error(display, exc) from exc
    shape = _as_3d_shape(shape, display)
    spacing = tuple(float(z) for z in tuple(zooms)[:3])
    if len(spacing) < 3:
        spacing = spacing + (1.0, ) * (3 - len(spacing))
    _check_geometry(spacing, affine, display)
    return VolumeHeader(shape=shape, spacing=spacing, affine=affine)


def read_volume(path: PathLike,
                display: Optional[str] = None,
                is_label: bool = False) -> Volume:
    """Read a 3D volume.

    Args:
        path (str | PathLike): ``.nii``/``.nii.gz`` (nibabel) or any format
            SimpleITK reads (``.mha``, ``.mhd``, ``.nrrd``...).
        display (str, optional): Name used in error messages. Defaults to
            the path.
        is_label (bool): Keep the stored integer dtype (labels) instead of
            converting to float32 (images). Defaults to False.

    Returns:
        Volume: The array in the reader's axis order with its geometry.

    Raises:
        FileNotFoundError: The file does not exist.
        DatasetFormatError: The file is unreadable, not 3D, or a label file
            holds non-integer values.
    """
    path = Path(path)
    display = display or str(path)
    require_file(path, display)
    try:
        if _is_nifti(path):
            import nibabel as nib
            img = nib.load(str(path))
            data = np.asanyarray(img.dataobj)
            if not is_label:
                data = data.astype(np.float32, copy=False)
            spacing = tuple(float(z) for z in img.header.get_zooms()[:3])
            affine = np.asarray(img.affine, dtype=np.float64)
        else:
            sitk = _sitk()
            img = sitk.ReadImage(str(path))
            if img.GetNumberOfComponentsPerPixel() != 1:
                raise DatasetFormatError(
                    f'{display}: has {img.GetNumberOfComponentsPerPixel()} '
                    'components per voxel; provide a scalar volume')
            data = sitk.GetArrayFromImage(img)
            if not is_label:
                data = data.astype(np.float32, copy=False)
            spacing = tuple(float(s) for s in reversed(img.GetSpacing()))
            affine = _itk_affine(img.GetDirection(), img.GetSpacing(),
                                 img.GetOrigin())
    except DatasetFormatError:
        raise
    except Exception as exc:  # noqa: BLE001 - any reader failure
        raise unreadable_file_error(display, exc) from exc
    shape = _as_3d_shape(data.shape, display)
    data = data.reshape(shape)
    if is_label:
        data = as_integer_labels(data, display)
    if len(spacing) < 3:
        spacing = spacing + (1.0, ) * (3 - len(spacing))
    _check_geometry(spacing[:3], affine, display)
    return Volume(data=data, spacing=spacing[:3], affine=affine)


def volume_suffix(path: PathLike) -> str:
    """The volume suffix of ``path`` (``.nii.gz``, ``.nii``, ``.mha``...).

    Raises:
        DatasetFormatError: ``path`` has no known volume suffix.
    """
    name = Path(path).name.lower()
    for suffix in NIFTI_SUFFIXES + ITK_SUFFIXES:
        if name.endswith(suffix):
            return suffix
    raise DatasetFormatError(
        f'{path}: unknown volume suffix; use one of '
        f'{list(NIFTI_SUFFIXES + ITK_SUFFIXES)}')


def write_volume_like(path: PathLike, array: np.ndarray,
                      reference: PathLike) -> None:
    """Write ``array`` with the geometry and header of ``reference``.

    ``array`` is in the reader's array-axis order of ``reference`` (as
    returned by :func:`read_volume`), optionally with extra trailing axes
    (e.g. classes) that become vector components. NIfTI output keeps the
    reference header (affine, qform/sform codes, units) with the data type
    and scaling of ``array``; other formats copy origin, spacing and
    direction. The file is written to a temporary name in the destination
    folder and renamed, so an interrupted write never leaves a partial
    ``path`` and never damages an existing one.

    Args:
        path (str | PathLike): Output file; the suffix picks the format.
        array (np.ndarray): Voxel data whose first three axes match the
            reference volume.
        reference (str | PathLike): The volume whose geometry is copied.

    Raises:
        DatasetFormatError: Shape mismatch with the reference or an unknown
            suffix.
    """
    path, reference = Path(path), Path(reference)
    suffix = volume_suffix(path)
    array = np.asarray(array)
    with atomic_file(path, suffix) as tmp:
        if _is_nifti(reference) and suffix in NIFTI_SUFFIXES:
            import nibabel as nib
            ref = nib.load(str(reference))
            if tuple(array.shape[:3]) != tuple(ref.shape[:3]):
                raise DatasetFormatError(
                    f'{path.name}: array shape {list(array.shape)} does not '
                    f'match the reference {reference.name} '
                    f'{list(ref.shape)}')
            header = ref.header.copy()
            header.set_data_dtype(array.dtype)
            header.set_slope_inter(1.0, 0.0)
            if array.ndim > 3:
                header.set_intent('vector')
            img = nib.Nifti1Image(array, ref.affine, header=header)
            img.set_qform(*ref.header.get_qform(coded=True))
            img.set_sform(*ref.header.get_sform(coded=True))
            nib.save(img, tmp)
        else:
            sitk = _sitk()
            if _is_nifti(reference):
                # nibabel's array axes (i, j, k) are ITK's (x, y, z), which
                # SimpleITK's arrays hold as (z, y, x)
                array = np.transpose(array,
                                     (2, 1, 0) + tuple(range(3, array.ndim)))
            reader = sitk.ImageFileReader()
            reader.SetFileName(str(reference))
            try:
                reader.ReadImageInformation()
            except RuntimeError as exc:
                detail = [ln.strip() for ln in str(exc).splitlines()
                          if ln.strip()]
                raise DatasetFormatError(
                    f'{path.name}: the geometry of {reference.name} cannot '
                    f'be written as {suffix} ({detail[-1] if detail else exc}'
                    '); write the mask as .nii.gz instead') from exc
            shape = tuple(reversed(reader.GetSize()))
            if tuple(array.shape[:3]) != tuple(shape[-3:]):
                raise DatasetFormatError(
                    f'{path.name}: array shape {list(array.shape)} does not '
                    f'match the reference {reference.name} {list(shape)}')
            img = sitk.GetImageFromArray(array, isVector=array.ndim > 3)
            img.SetOrigin(reader.GetOrigin())
            img.SetSpacing(reader.GetSpacing())
            img.SetDirection(reader.GetDirection())
            sitk.WriteImage(img, tmp, True)


def write_nifti(path: PathLike,
                array: np.ndarray,
                affine: np.ndarray,
                xyzt_units: Optional[str] = None) -> None:
    """Write ``array`` as NIfTI with ``affine`` (sform and qform), atomically.

    Args:
        path (str | PathLike): ``.nii`` or ``.nii.gz`` file.
        array (np.ndarray): 3D voxel data in array-axis order.
        affine (np.ndarray): 4x4 array-index to RAS+ mm matrix.
        xyzt_units (str, optional): Spatial unit stored in the header
            (e.g. ``'mm'``); left unset when None. Defaults to None.
    """
    import nibabel as nib
    path = Path(path)
    if volume_suffix(path) not in NIFTI_SUFFIXES:
        raise DatasetFormatError(f'{path}: a NIfTI file must end with .nii '
                                 'or .nii.gz')
    img = nib.Nifti1Image(np.asarray(array), np.asarray(affine, float))
    img.set_qform(img.affine, code=1)
    img.set_sform(img.affine, code=1)
    if xyzt_units is not None:
        img.header.set_xyzt_units(xyzt_units)
    with atomic_file(path, volume_suffix(path)) as tmp:
        nib.save(img, tmp)


def as_integer_labels(data: np.ndarray, display: str) -> np.ndarray:
    """Return ``data`` as an integer array, refusing fractional values.

    Args:
        data (np.ndarray): Label values as read from a file.
        display (str): File name for error messages.

    Returns:
        np.ndarray: ``data`` itself when integer, else an integer copy.

    Raises:
        DatasetFormatError: Non-numeric, fractional or non-finite values.
    """
    if np.issubdtype(data.dtype, np.integer):
        return data
    if data.dtype == np.bool_:
        return data.astype(np.uint8)
    if not np.issubdtype(data.dtype, np.floating):
        raise DatasetFormatError(
            f'{display}: label array has dtype {data.dtype}; store labels as '
            'integers')
    if not np.all(np.isfinite(data)) or np.any(data != np.round(data)):
        raise DatasetFormatError(
            f'{display}: label array holds non-integer or non-finite values; '
            'a mask must contain integer label values only')
    return data.astype(np.int64)


def choose_slice_axis(spacing: Sequence[float], shape: Sequence[int]) -> int:
    """Pick the slice axis of a volume from its geometry.

    The axis with the largest spacing (the through-plane direction of a 2D
    multi-slice acquisition) is chosen; among axes with equal spacing (to
    1e-3 relative) the one with the fewest voxels wins, then the lowest axis.

    Args:
        spacing (Sequence[float]): Voxel size per array axis.
        shape (Sequence[int]): Array shape.

    Returns:
        int: The slice axis.
    """
    spacing = np.asarray(spacing, dtype=np.float64)
    largest = spacing.max()
    tied = [
        a for a in range(len(spacing))
        if np.isclose(spacing[a], largest, rtol=1e-3, atol=0)
    ]
    return min(tied, key=lambda a: (int(shape[a]), a))
