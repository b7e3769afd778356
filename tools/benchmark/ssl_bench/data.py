"""The benchmark's data: one conversion of the raw dataset per work dir,
its splits, and the stage-1 prompt file for its classes."""
import os
import os.path as osp
from typing import Iterable, Optional, Sequence

from mmengine.logging import print_log

from cps4.datasets.converters import convert_dataset
from cps4.datasets.meta import read_meta
from cps4.datasets.splits import write_splits
from cps4.models.prompts import find_matching_prompt_file
from cps4.utils.fileio import write_json_atomic
from .sweep import hold_lock
from .schedules import REPO_ROOT


def prepare_data(data_root: str, layout: str, out_dir: str,
                 seeds: Iterable[int], ratios: Iterable[float],
                 classes: Optional[str] = None,
                 labelled_cases: Iterable[int] = ()) -> dict:
    """Convert ``data_root`` into ``out_dir`` once and write its splits
    (every seed at every label ratio and number of labelled cases).

    An existing conversion of the same source folder is reused; one of
    another folder is refused. Conversion and splits happen under the lock
    ``out_dir.lock``: a second benchmark process started on the same work
    dir waits for the first one's conversion and then reuses it.

    Returns:
        dict: The converted dataset's ``meta.json``.
    """
    src = osp.abspath(data_root)
    os.makedirs(osp.dirname(osp.abspath(out_dir)), exist_ok=True)
    with hold_lock(out_dir.rstrip('/') + '.lock', waiting_message=(
            f'waiting for another process to convert {src}')):
        if osp.isfile(osp.join(out_dir, 'meta.json')):
            meta = read_meta(out_dir)
            if osp.abspath(meta.get('source_root', '')) != src:
                raise ValueError(
                    f'{out_dir} holds a conversion of '
                    f'{meta.get("source_root")}, not of {src}; use another '
                    '--work-dir')
            print_log(f'reusing the converted data in {out_dir}',
                      logger='current')
        else:
            print_log(f'converting {src} ({layout} layout) into {out_dir}',
                      logger='current')
            # images without a mask join the unlabelled pool of every split
            convert_dataset(src, out_dir, layout=layout, classes=classes,
                            splits=False, allow_unlabelled=True)
        write_splits(out_dir, seeds=sorted(set(seeds)),
                     label_ratios=sorted(set(ratios)),
                     labelled_cases=sorted(set(labelled_cases)))
        return read_meta(out_dir)


def choose_prompt_file(classes: Sequence[str], work_dir: str,
                       prompt_file: Optional[str] = None) -> str:
    """The stage-1 prompt file for ``classes``.

    Order: ``prompt_file`` when given; a prompt file of the repository that
    defines exactly these classes; else a names-only file written to
    ``work_dir/prompts.json`` (each class prompted by its name).
    """
    if prompt_file:
        return osp.abspath(prompt_file)
    found = find_matching_prompt_file(classes)
    if found is not None:
        return osp.join(str(REPO_ROOT), str(found))
    path = osp.join(work_dir, 'prompts.json')
    write_json_atomic(path, dict(
        _comment='Written by the SSL benchmark: class names as prompts.',
        classes=[dict(name=c, phrase=c, description=c) for c in classes],
        templates=['a sagittal MR image of the {}.']))
    print_log(f'no prompt file matches the classes {list(classes)}; using '
              f'class names as prompts ({path}); pass --prompt-file for '
              'better ones', logger='current', level=30)
    return path
