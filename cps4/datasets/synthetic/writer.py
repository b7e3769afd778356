# Copyright (c) CPS4 contributors. All rights reserved.
"""Write a synthetic spine dataset in the nnU-Net raw layout."""
import json
from contextlib import nullcontext
from multiprocessing import get_context
from pathlib import Path
from typing import Dict, Tuple, Union

import numpy as np
from mmengine.logging import print_log
from mmengine.utils import ProgressBar

from cps4.utils.fileio import write_json_atomic

from ..volume_io import write_nifti
from .params import GENERATOR_VERSION, SPINE_CLASSES, SPINE_PALETTE
from .render import generate_case

#: Generator name recorded in ``dataset.json``. A dataset counts as complete
#: only when its recorded generator (name, version, seed, size) matches.
GENERATOR_ID = 'cps4.datasets.synthetic_spine'


def _case_files(out_dir: Path, index: int) -> Tuple[Path, Path]:
    """Image and label file of case ``index``."""
    name = f'spine_{index:03d}'
    return (out_dir / 'imagesTr' / f'{name}_0000.nii.gz',
            out_dir / 'labelsTr' / f'{name}.nii.gz')


def _is_complete(out_dir: Path, generator: Dict) -> bool:
    """Whether ``out_dir`` holds a finished dataset made with ``generator``."""
    meta_file = out_dir / 'dataset.json'
    if not meta_file.is_file():
        return False
    try:
        with open(meta_file) as f:
            meta = json.load(f)
    except (OSError, ValueError):
        return False
    if meta.get('generator') != generator:
        return False
    return all(p.is_file() for i in range(generator['num_cases'])
               for p in _case_files(out_dir, i))


def _write_case(job: Tuple[Path, int, int, Tuple[int, int]]) -> dict:
    """Draw case ``i`` of ``seed`` and write its image and label files.

    Returns:
        dict: The case's ``dataset.json`` ``training`` entry.
    """
    out_dir, seed, i, image_size = job
    image, label, spacing = generate_case((seed, i), image_size)
    image_file, label_file = _case_files(out_dir, i)
    image = np.clip(np.rint(image), 0, np.iinfo(np.int16).max)
    affine = np.diag([*map(float, spacing), 1.0])
    write_nifti(image_file, image.astype(np.int16), affine, xyzt_units='mm')
    write_nifti(label_file, label, affine, xyzt_units='mm')
    return dict(image=str(image_file.relative_to(out_dir)),
                label=str(label_file.relative_to(out_dir)))


def write_synthetic_dataset(out_dir: Union[str, Path],
                            num_cases: int = 40,
                            seed: int = 0,
                            image_size: Tuple[int, int] = (192, 192),
                            overwrite: bool = False,
                            progress: bool = True,
                            workers: int = 1) -> Path:
    """Write a synthetic spine dataset in the nnU-Net raw layout.

    The layout is ``imagesTr/spine_XXX_0000.nii.gz``,
    ``labelsTr/spine_XXX.nii.gz`` and ``dataset.json``. Case ``i`` is drawn
    with ``np.random.default_rng((seed, i))``; images are stored as int16
    (rounded intensities), labels as uint8, with a diagonal affine holding
    the spacing. Each file is written to a
    temporary file in the same folder and moved in place, and
    ``dataset.json`` is written last, so an interrupted run never leaves a
    corrupt file and is detected as incomplete.

    Args:
        out_dir (str | Path): Output folder, created if needed.
        num_cases (int): Number of cases. Defaults to 40.
        seed (int): Base seed. Defaults to 0.
        image_size (tuple[int, int]): In-plane size ``(H, W)``.
            Defaults to (192, 192).
        overwrite (bool): Regenerate even if ``out_dir`` already holds a
            complete dataset with the same parameters. Defaults to False.
        progress (bool): Show a progress bar. Defaults to True.
        workers (int): Processes that draw and write cases; each case
            depends only on its seed, so the files are the same for any
            number. Defaults to 1.

    Returns:
        Path: ``out_dir``.
    """
    out_dir = Path(out_dir)
    if num_cases < 1:
        raise ValueError(f'num_cases must be positive, got {num_cases}')
    generator = dict(
        module=GENERATOR_ID,
        version=GENERATOR_VERSION,
        seed=int(seed),
        num_cases=int(num_cases),
        image_size=[int(v) for v in image_size])
    if not overwrite and _is_complete(out_dir, generator):
        print_log(
            f'Synthetic spine dataset already complete in {out_dir}, '
            'skipping generation (use overwrite=True to regenerate).',
            logger='current')
        return out_dir

    (out_dir / 'imagesTr').mkdir(parents=True, exist_ok=True)
    (out_dir / 'labelsTr').mkdir(parents=True, exist_ok=True)
    print_log(
        f'Generating {num_cases} synthetic spine cases '
        f'(seed={seed}, size={tuple(image_size)}) in {out_dir}',
        logger='current')
    bar = ProgressBar(num_cases) if progress else None
    jobs = [(out_dir, int(seed), i, tuple(image_size))
            for i in range(num_cases)]
    training = []
    pool = (get_context('fork').Pool(min(workers, num_cases))
            if workers > 1 else nullcontext())
    with pool:
        for entry in (pool.imap(_write_case, jobs) if workers > 1 else
                      map(_write_case, jobs)):
            training.append(entry)
            if bar is not None:
                bar.update()

    meta = dict(
        name='SyntheticSpine',
        description='Procedural sagittal T2-like MR volumes of the lower '
        'thoracic and lumbar spine with MRSpineSeg labels (vertebrae S-T9, '
        f'discs L5/S-T9/T10), generated by {GENERATOR_ID}.',
        channel_names={'0': 'MR'},
        labels={
            name: value
            for value, name in enumerate(SPINE_CLASSES)
        },
        numTraining=int(num_cases),
        file_ending='.nii.gz',
        slice_axis=2,
        axes=[
            'superior_to_inferior', 'anterior_to_posterior', 'left_to_right'
        ],
        palette=[list(c) for c in SPINE_PALETTE],
        generator=generator,
        training=training)
    write_json_atomic(out_dir / 'dataset.json', meta)
    if bar is not None:
        bar.file.write('\n')  # ProgressBar does not end its line
    print_log(f'Wrote synthetic spine dataset to {out_dir}', logger='current')
    return out_dir
