"""A converted dataset whose unlabelled cases carry agreed pseudo labels,
for a self-training round of a model (e.g. the stage-1 VLM)."""
import os
import shutil
import tempfile
from pathlib import Path
from typing import List, Optional, Sequence, Tuple

import numpy as np
from mmengine.logging import print_log
from PIL import Image

from ..datasets.meta import read_meta
from ..datasets.splits import load_split
from ..utils.fileio import PathLike, write_json_atomic
from .inference import _predict_slices, init_model

#: Label of pixels on which the experts disagree (ignored by every loss).
IGNORE = 255


def _slice_files(root: Path, sub: str, case: str, n: int) -> List[Path]:
    return [root / sub / f'{case}_{i:04d}.png' for i in range(n)]


def write_agreement_dataset(data_root: PathLike,
                            split: str,
                            out_dir: PathLike,
                            experts: Sequence[Tuple[str, Optional[str]]],
                            batch_size: int = 8,
                            overwrite: bool = False,
                            progress: bool = True) -> Path:
    """Write a converted dataset in which every unlabelled case of
    ``split`` is labelled where all ``experts`` agree, and 255 elsewhere.

    Images and the ground truth of the split's labelled, val and test cases
    are links to ``data_root``; the hidden labels of its unlabelled cases
    are never opened. The new split ``splits/<split stem>_agreement.json``
    has the labelled and the pseudo-labelled cases as ``labelled`` and the
    same val and test cases, so the same config trains a second round on it
    with ``data_root=OUT`` and ``split=splits/<stem>_agreement.json``.
    The folder is written next to ``out_dir`` and renamed into place at the
    end: a failure leaves no half-written dataset.

    Args:
        data_root (str | PathLike): Converted dataset.
        split (str): Split file, relative to ``data_root``.
        out_dir (str | PathLike): Output folder.
        experts (Sequence[tuple]): ``(config, checkpoint)`` of each model
            whose arg-max maps must agree (e.g. the stage-1 VLM and the
            stage-2 teacher).
        batch_size (int): Slices per forward pass.
        overwrite (bool): Replace an existing ``out_dir``.
        progress (bool): Show progress bars.

    Returns:
        Path: ``out_dir``.

    Raises:
        ValueError: Fewer than one expert, or ``out_dir`` is ``data_root``.
        FileExistsError: ``out_dir`` exists and ``overwrite`` is False.
    """
    src, out = Path(data_root).absolute(), Path(out_dir).absolute()
    if not experts:
        raise ValueError('give at least one expert (config, checkpoint)')
    if out == src:
        raise ValueError(f'{out} is the source dataset; write elsewhere')
    if out.exists() and not overwrite:
        raise FileExistsError(f'{out} exists; pass overwrite=True '
                              '(--overwrite) to replace it')
    meta, subsets = read_meta(src), load_split(src / split)
    models = [init_model(cfg, ckpt) for cfg, ckpt in experts]
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f'.{out.name}.', dir=out.parent))
    try:
        (tmp / 'images').mkdir()
        (tmp / 'labels').mkdir()
        (tmp / 'splits').mkdir()
        cases, agreed_share = dict(meta['cases']), []
        for case, info in meta['cases'].items():
            n = info['n_slices']
            for f in _slice_files(src, 'images', case, n):
                os.symlink(f, tmp / 'images' / f.name)
            if case in subsets['unlabelled']:
                fg, share = _write_agreement(models, src, tmp, case, n,
                                             batch_size, progress)
                cases[case] = dict(info, label='pseudo',
                                   foreground_voxels=fg)
                agreed_share.append(share)
            elif info.get('label'):
                for f in _slice_files(src, 'labels', case, n):
                    os.symlink(f, tmp / 'labels' / f.name)
        pseudo = [c for c in subsets['unlabelled']
                  if cases[c]['foreground_voxels'] > 0]
        mean = float(np.mean(agreed_share)) if agreed_share else None
        write_json_atomic(tmp / 'meta.json', dict(
            meta, cases=cases, pseudo_labels=dict(
                source_root=str(src), split=split,
                experts=[[str(c), str(k)] for c, k in experts],
                cases=sorted(subsets['unlabelled']),
                pseudo_labelled=sorted(pseudo), agreed_share=mean)))
        new_split = {k: v for k, v in subsets.items() if k != 'n_labelled'}
        new_split.update(labelled=sorted(subsets['labelled'] + pseudo),
                         unlabelled=sorted(set(subsets['unlabelled'])
                                           - set(pseudo)),
                         pseudo_labelled=sorted(pseudo))
        name = f'{Path(split).stem}_agreement.json'
        write_json_atomic(tmp / 'splits' / name, new_split)
        if out.exists():
            shutil.rmtree(out)
        os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    print_log(f'{out}: {len(pseudo)} of {len(subsets["unlabelled"])} '
              f'unlabelled cases pseudo-labelled; the experts agree on '
              f'{100 * (mean or 0.0):.1f}% of their pixels',
              logger='current')
    return out


def _write_agreement(models, src: Path, tmp: Path, case: str, n: int,
                     batch_size: int, progress: bool) -> Tuple[int, float]:
    """Write one case's agreement labels; return its foreground voxel count
    and the share of pixels the experts agree on."""
    stack = np.stack([np.array(Image.open(f))
                      for f in _slice_files(src, 'images', case, n)])
    maps = [np.stack(_predict_slices(m, stack, batch_size, False, progress,
                                     None)[0]) for m in models]
    agree = np.all([m == maps[0] for m in maps[1:]], axis=0)
    labels = np.where(agree, maps[0], IGNORE).astype(np.uint8)
    for i, plane in enumerate(labels):
        Image.fromarray(plane).save(tmp / 'labels' / f'{case}_{i:04d}.png')
    fg = int(np.count_nonzero((labels > 0) & (labels != IGNORE)))
    return fg, float(agree.mean())
