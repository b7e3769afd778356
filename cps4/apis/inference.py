"""Run a trained model on whole volumes (NIfTI, MetaImage, NRRD).

The volume is prepared exactly as the dataset converters prepare training
cases (per-case percentile normalisation to uint8, 2D slices along the
through-plane axis), each slice goes through the config's test pipeline, and
the slice predictions are stacked back into a mask with the input's shape and
geometry.

Example::

    from cps4.apis import inference_volume, init_model, save_prediction

    model = init_model('configs/cps4/....py', 'work_dirs/x/iter_2000.pth')
    pred = inference_volume(model, 'case_0000.nii.gz')
    save_prediction(pred, 'case.nii.gz')
"""
import copy
import logging
import os
import os.path as osp
from dataclasses import dataclass, field
from pathlib import Path
from typing import List, Optional, Sequence, Tuple, Union

import numpy as np
import torch
import torch.nn as nn
from mmengine.config import Config
from mmengine.dataset import Compose
from mmengine.logging import print_log
from mmengine.registry import init_default_scope
from mmengine.runner import load_checkpoint

from cps4.apis.dataset_inference import inference_dataset
from cps4.datasets.intensity import apply_intensity_window, intensity_window
from cps4.datasets.meta import (class_to_source_values, dataset_orientation,
                                read_meta, reassemble_volume)
from cps4.datasets.orientation import Reorientation, reorientation
from cps4.datasets.volume_io import (ITK_SUFFIXES, NIFTI_SUFFIXES,
                                     choose_slice_axis, read_volume,
                                     strip_suffix, write_volume_like)
from cps4.engine.hooks import to_memory_format
from cps4.utils import memory_format_of, merge_cfg_options
from cps4.utils.fileio import DatasetFormatError

PathLike = Union[str, os.PathLike]
VOLUME_SUFFIXES = NIFTI_SUFFIXES + ITK_SUFFIXES


@dataclass
class VolumePrediction:
    """The prediction for one volume.

    Attributes:
        labels (np.ndarray): Class indices, the input's array shape.
        source (str): The input file (its geometry is reused on saving).
        slice_axis (int): The array axis the slices were taken along.
        label_values (list[int] | None): Source label value of each class
            (from training's ``meta.json``); None writes class indices.
        probs (np.ndarray, optional): Per-class probabilities, shape
            ``(*labels.shape, K)``: the softmax of the logits, or for a
            stage-1 VLM its per-class binary maps.
        classes (tuple[str]): Class names.
    """
    labels: np.ndarray
    source: str
    slice_axis: int
    label_values: Optional[List[int]] = None
    probs: Optional[np.ndarray] = None
    classes: Tuple[str, ...] = field(default_factory=tuple)


def _data_root_meta(cfg: Config) -> Optional[dict]:
    """``meta.json`` of the test (or train) data root of ``cfg``, if any."""
    for key in ('test_dataloader', 'val_dataloader', 'train_dataloader'):
        loader = cfg.get(key)
        if not loader:
            continue
        dataset = loader.get('dataset', {})
        roots = [dataset.get('data_root')] + [
            d.get('data_root') for d in dataset.get('datasets', [])]
        for root in roots:
            if root and osp.isfile(osp.join(root, 'meta.json')):
                return read_meta(root)
    return None


def init_model(config: Union[str, Config],
               checkpoint: Optional[str] = None,
               device: str = 'cpu',
               cfg_options: Optional[dict] = None) -> nn.Module:
    """Build a segmentor from a config and load its trained weights.

    For a stage-2 :class:`CPS4SemiSegmentor` the stage-1 VLM weights come
    from ``checkpoint`` too (they are part of the stage-2 state dict), so
    the stage-1 checkpoint named in ``model.vlm.init_cfg`` need not exist.

    The class names, palette, label values and slice axis of the training
    data (``model.dataset_meta``) come from the checkpoint's metadata, else
    from the ``meta.json`` of the config's data root. A ``MemoryFormatHook``
    in the config's ``custom_hooks`` converts the weights as in testing.

    Args:
        config (str | Config): Config file or object.
        checkpoint (str, optional): Checkpoint file (``.pth``).
        device (str): ``'cpu'`` or ``'cuda'`` / ``'cuda:N'``.
        cfg_options (dict, optional): Overrides merged into the config.

    Returns:
        nn.Module: The model in eval mode, with ``cfg`` and
        ``dataset_meta`` attributes.

    Raises:
        FileNotFoundError: The config or checkpoint does not exist.
        RuntimeError: The checkpoint is unreadable or does not fit the
            model.
    """
    if isinstance(config, (str, Path)):
        if not osp.isfile(config):
            raise FileNotFoundError(f'config not found: {config}')
        config = Config.fromfile(str(config))
    elif not isinstance(config, Config):
        raise TypeError(f'config must be a path or a Config, got '
                        f'{type(config).__name__}')
    cfg = copy.deepcopy(config)
    merge_cfg_options(cfg, cfg_options)
    if device.startswith('cuda') and not torch.cuda.is_available():
        raise RuntimeError(f'--device {device} asked for, but torch sees no '
                           'CUDA device; use --device cpu')
    init_default_scope(cfg.get('default_scope', 'mmseg'))
    import cps4  # noqa: F401  (registers the components)
    from mmseg.registry import MODELS
    model_cfg = copy.deepcopy(cfg.model)
    vlm_init = (model_cfg.get('vlm') or {}).get('init_cfg')
    if checkpoint is not None and isinstance(vlm_init, dict):
        # the stage-2 checkpoint holds the VLM; its stage-1 file is not
        # needed (nor present, on another machine)
        vlm_init['checkpoint'] = None
    model = MODELS.build(model_cfg)
    meta = None
    if checkpoint is not None:
        if not osp.isfile(checkpoint):
            raise FileNotFoundError(f'checkpoint not found: {checkpoint}')
        try:
            ckpt = load_checkpoint(model, checkpoint, map_location='cpu',
                                   strict=True, logger='silent')
        except Exception as exc:  # noqa: BLE001 - any load failure
            raise RuntimeError(
                f'{checkpoint}: cannot load it into the model of the config '
                f'({type(exc).__name__}: {exc}); check that the checkpoint '
                'was trained with this config and is complete') from exc
        meta = ckpt.get('meta', {}).get('dataset_meta')
    if not meta or 'label_values' not in meta:
        file_meta = _data_root_meta(cfg)
        if file_meta is not None:
            meta = dict(meta or {})
            meta.setdefault('classes', tuple(file_meta['classes']))
            meta.setdefault('palette', file_meta.get('palette'))
            meta.setdefault('label_values', file_meta['label_values'])
            meta.setdefault('slice_axis', file_meta['slice_axis'])
            meta.setdefault('orientation', dataset_orientation(file_meta))
    if meta and 'orientation' not in meta:
        # checkpoints written before the orientation travelled in them
        file_meta = _data_root_meta(cfg)
        meta = dict(meta, orientation=None if file_meta is None else
                    dataset_orientation(file_meta))
    model.dataset_meta = meta or {}
    model.cfg = cfg
    model.to(device)
    memory_format = memory_format_of(cfg)
    if memory_format is not None:
        to_memory_format(model, memory_format)
    model.eval()
    return model


def build_volume_pipeline(cfg: Config) -> Compose:
    """The config's test pipeline fed with in-memory 2D slices.

    ``LoadImageFromFile`` becomes ``LoadImageFromNDArray`` and annotation
    loading is dropped; resizing and packing stay as in testing.
    """
    loader = cfg.get('test_dataloader') or {}
    pipeline = (loader.get('dataset', {}).get('pipeline')
                or cfg.get('test_pipeline'))
    if not pipeline:
        raise KeyError('the config has no test pipeline '
                       '(test_dataloader.dataset.pipeline or test_pipeline)')
    steps = []
    for step in copy.deepcopy(pipeline):
        if step['type'] in ('LoadImageFromFile', 'mmseg.LoadImageFromFile'):
            step = dict(type='LoadImageFromNDArray')
        elif 'LoadAnnotations' in step['type']:
            continue
        elif step['type'] in ('PackSegInputs', 'mmseg.PackSegInputs'):
            step = dict(type='PackSegInputs',
                        meta_keys=('ori_shape', 'img_shape', 'pad_shape',
                                   'scale_factor', 'flip', 'flip_direction',
                                   'reduce_zero_label', 'slice_idx'))
        steps.append(step)
    return Compose(steps)


def _slice_stack(volume: str, slice_axis: Optional[int],
                 trained_axis: Optional[int],
                 orientation: Optional[str] = None
                 ) -> Tuple[np.ndarray, int, Optional[Reorientation]]:
    """Read a volume and window it into a uint8 stack of slices.

    With ``orientation`` (the axis codes of the training cases) and no
    ``slice_axis``, the volume is first brought to that orientation from its
    affine and cut along ``trained_axis``, as the converters cut the
    training cases, whatever axis order the file is stored in.

    Returns:
        tuple: The (N, H, W) uint8 slices with the converters' intensity
        window; the axis of the stored array they were taken along; and the
        reorientation applied (None when the stored array was cut as is).
    """
    name = osp.basename(volume)
    vol = read_volume(volume, name)
    data, to_model = vol.data, None
    if slice_axis is None and orientation is not None and (
            trained_axis is not None):
        to_model = reorientation(vol.affine, data.shape, orientation)
        data = to_model.apply(data)
        axis = int(trained_axis) % 3
        stored_axis = int(np.flatnonzero(to_model.transform[:, 0] == axis)[0])
    else:
        if slice_axis is None:
            slice_axis = choose_slice_axis(vol.spacing, data.shape)
            if trained_axis is not None and int(trained_axis) != slice_axis:
                print_log(
                    f'{name}: slicing along axis {slice_axis} (its largest '
                    f'spacing); the training volumes were sliced along axis '
                    f'{trained_axis}. Pass slice_axis if this volume is '
                    'stored in another axis order.', logger='current',
                    level=logging.WARNING)
        elif not -3 <= slice_axis <= 2:
            raise ValueError(
                f'slice_axis must be 0, 1 or 2, got {slice_axis}')
        axis = stored_axis = slice_axis % 3
    # the converters' normalisation, applied slice by slice: the only
    # volume-sized arrays are the float32 input and the uint8 result
    lo, hi = intensity_window(data, name)
    moved = np.moveaxis(data, axis, 0)
    image = np.empty(moved.shape, np.uint8)
    for i in range(moved.shape[0]):
        image[i] = apply_intensity_window(moved[i], lo, hi)
    return image, stored_axis, to_model


class _SliceSequence:
    """The slices of a uint8 stack as packed model inputs, built on access
    by the config's test pipeline (what :func:`inference_dataset` reads)."""

    def __init__(self, image: np.ndarray, pipeline: Compose) -> None:
        self.image = image
        self.pipeline = pipeline

    def __len__(self) -> int:
        return self.image.shape[0]

    def __getitem__(self, i: int) -> dict:
        return self.pipeline(
            dict(img=np.ascontiguousarray(self.image[i]), slice_idx=i))


def _predict_slices(model: nn.Module, image: np.ndarray, batch_size: int,
                    with_probs: bool, progress: bool, amp: Optional[bool]
                    ) -> Tuple[List[np.ndarray], List[np.ndarray]]:
    """Class indices (and probabilities) of every slice of ``image``."""
    slices = _SliceSequence(image, build_volume_pipeline(model.cfg))
    labels: List[np.ndarray] = []
    probs: List[np.ndarray] = []
    for _, samples in inference_dataset(model, slices, batch_size=batch_size,
                                        progress=progress, amp=amp):
        for sample in samples:
            labels.append(sample.pred_sem_seg.data[0].cpu().numpy()
                          .astype(np.uint8))
            if with_probs:
                if 'class_maps' in sample:
                    p = sample.class_maps.data
                else:
                    p = sample.seg_logits.data.float().softmax(0)
                probs.append(p.float().cpu().numpy())
    return labels, probs


def inference_volume(model: nn.Module,
                     volume: PathLike,
                     batch_size: int = 8,
                     slice_axis: Optional[int] = None,
                     with_probs: bool = False,
                     progress: bool = True,
                     amp: Optional[bool] = None) -> VolumePrediction:
    """Segment one volume slice by slice.

    Args:
        model (nn.Module): From :func:`init_model`.
        volume (str | PathLike): ``.nii``/``.nii.gz``/``.mha``/``.nrrd`` file.
        batch_size (int): Slices per forward pass; bounds the memory.
        slice_axis (int, optional): Axis of the stored array to slice
            along, as stored (no reorientation). Defaults to the training
            cases' slicing: the volume is brought to the training
            orientation from its affine and cut along the training slice
            axis (for models whose dataset has no orientation, e.g. 2D
            data: the axis of largest spacing).
        with_probs (bool): Also return per-class probabilities.
        progress (bool): Show a progress bar.
        amp (bool, optional): Run the network under mixed-precision
            autocast (bfloat16 on the CPU). Defaults to the config's
            ``test_cfg.fp16``.

    Returns:
        VolumePrediction: Class indices (and probabilities) in the input's
        array shape.

    Raises:
        FileNotFoundError: ``volume`` does not exist.
        DatasetFormatError: It is unreadable, not 3D, or holds NaN/Inf.
    """
    if batch_size < 1:
        raise ValueError(f'batch_size must be >= 1, got {batch_size}')
    volume = str(volume)
    meta = getattr(model, 'dataset_meta', None) or {}
    image, slice_axis, to_model = _slice_stack(volume, slice_axis,
                                               meta.get('slice_axis'),
                                               meta.get('orientation'))
    labels, probs = _predict_slices(model, image, batch_size, with_probs,
                                    progress, amp)
    n = image.shape[0]
    axis = slice_axis if to_model is None else int(
        to_model.transform[slice_axis, 0])
    label_volume = reassemble_volume(labels, n, axis)
    prob_volume = None
    if with_probs:
        # (K, H, W) per slice -> (*volume shape, K)
        prob_volume = np.stack(
            [reassemble_volume([p[k] for p in probs], n, axis)
             for k in range(probs[0].shape[0])], axis=-1)
    if to_model is not None:  # back to the input's own array order
        label_volume = to_model.undo(label_volume)
        prob_volume = (None if prob_volume is None else
                       to_model.undo(prob_volume))
    return VolumePrediction(
        labels=label_volume,
        source=volume,
        slice_axis=slice_axis,
        label_values=meta.get('label_values'),
        probs=prob_volume,
        classes=tuple(meta.get('classes') or ()))


def save_prediction(pred: VolumePrediction,
                    out_file: PathLike,
                    probs_file: Optional[PathLike] = None) -> None:
    """Write the mask (and probabilities) with the input's geometry.

    Class indices are mapped to the source label values of the training
    data (``pred.label_values``). Files are written atomically: a failure
    leaves no partial file and keeps an existing one.

    Args:
        pred (VolumePrediction): From :func:`inference_volume`.
        out_file (str | PathLike): Mask file (its suffix picks the format).
        probs_file (str | PathLike, optional): File for the float32
            probabilities (one vector component per class).
    """
    labels = pred.labels
    if pred.label_values is not None:
        labels = class_to_source_values(labels, pred.label_values,
                                        osp.basename(str(out_file)))
    Path(out_file).parent.mkdir(parents=True, exist_ok=True)
    write_volume_like(out_file, labels, pred.source)
    if probs_file is not None:
        if pred.probs is None:
            raise ValueError('pred has no probabilities; run '
                             'inference_volume(..., with_probs=True)')
        write_volume_like(probs_file, pred.probs, pred.source)


def probs_path(mask_file: PathLike) -> Path:
    """``<case>_probs<suffix>`` next to the mask ``<case><suffix>``."""
    mask_file = Path(mask_file)
    name = mask_file.name
    suffix = next((s for s in VOLUME_SUFFIXES if name.lower().endswith(s)),
                  '')
    stem = name[:len(name) - len(suffix)]
    return mask_file.with_name(f'{stem}_probs{name[len(stem):]}')


def case_name(path: PathLike) -> str:
    """Case id of an input file: the suffix and an nnU-Net channel tag
    (``_0000``) removed."""
    stem = strip_suffix(Path(path).name)
    if len(stem) > 5 and stem[-5] == '_' and stem[-4:].isdigit():
        stem = stem[:-5]
    return stem


def find_volumes(folder: PathLike) -> List[Path]:
    """Input volumes of a folder, nnU-Net channel files (``_0000``) only.

    Raises:
        DatasetFormatError: No volume in the folder, or multi-channel cases
            (``_0001`` files), which single-channel models cannot use.
    """
    folder = Path(folder)
    files = sorted(p for p in folder.iterdir()
                   if p.is_file() and not p.name.startswith('.')
                   and p.name.lower().endswith(VOLUME_SUFFIXES))
    if not files:
        raise DatasetFormatError(
            f'{folder}: no volume files ({", ".join(VOLUME_SUFFIXES)})')
    stems = [strip_suffix(p.name) for p in files]
    channels = [s for s in stems if len(s) > 5 and s[-5] == '_'
                and s[-4:].isdigit() and s[-4:] != '0000']
    if channels:
        raise DatasetFormatError(
            f'{folder}: {channels[:3]} are extra input channels; the model '
            'takes one channel (_0000) per case')
    names = [case_name(p) for p in files]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise DatasetFormatError(
            f'{folder}: several files map to the case ids {dupes[:5]}; keep '
            'one file per case')
    return files


def output_paths(inputs: Sequence[Path], output: PathLike,
                 suffix: Optional[str] = None) -> List[Path]:
    """Mask file per input: ``output`` itself for one file with a volume
    suffix, else ``output/<case id><suffix>``.

    Args:
        inputs (Sequence[Path]): Input files.
        output (str | PathLike): Output file or folder.
        suffix (str, optional): Output suffix; defaults to the input's.

    Raises:
        ValueError: An output would be one of the inputs, or the output
            folder holds inputs (a mask must never replace an image, nor
            be taken for one by the next run).
    """
    output = Path(output)
    single = len(inputs) == 1 and output.name.lower().endswith(
        VOLUME_SUFFIXES) and not output.is_dir()
    if single:
        out = [output]
    else:
        out = []
        for p in inputs:
            sfx = suffix or next(s for s in VOLUME_SUFFIXES
                                 if p.name.lower().endswith(s))
            out.append(output / f'{case_name(p)}{sfx}')
    sources = {Path(p).resolve() for p in inputs}
    clash = [str(p) for p in out if p.resolve() in sources]
    if clash:
        raise ValueError(
            f'output {clash[0]} is an input file; masks would replace the '
            'images. Choose an output outside the inputs')
    folders = {p.parent for p in sources}
    if not single and output.resolve() in folders:
        raise ValueError(
            f'output {output} puts masks into the folder of the input '
            'images, where they would be read as images next time; choose '
            'another output folder')
    return out
