"""The methods of the SSL benchmark and the cells they run in."""
import os.path as osp
from dataclasses import dataclass
from typing import Dict, List, Sequence, Tuple

from cps4.datasets.splits import check_label_ratio, format_pct

#: Template of the stage-1 runs (the vision-text model of CPS4). Templates
#: give model, augmentation and optimiser; the benchmark sets data root,
#: split, classes and the schedule file's keys (:mod:`.schedules`).
STAGE1_CONFIG = 'configs/cps4/cps4-vlm_r18_1xb4-1k_synthetic-5pct-128px.py'
_SSL = 'unet-s5-d16-fcn_2xb4-500_synthetic-5pct-128px'


@dataclass(frozen=True)
class Method:
    """A benchmark method: its template config and what it needs.

    Attributes:
        config (str): Template config, relative to the repository root.
        semi (bool): Trains on unlabelled cases too (not run at 100%).
        stage1 (bool): Needs a stage-1 VLM of the same split.
        predict_on (str): Network of an SSL method that predicts at test
            time; the student, chosen on the synthetic val cases, where the
            EMA teacher lags it at these schedule lengths.
    """
    config: str
    semi: bool = True
    stage1: bool = False
    predict_on: str = 'student'


#: Methods by command-line name.
METHODS: Dict[str, Method] = {
    # the student network of the SSL configs (UNet + FCN head, AdamW) on the
    # labelled cases only, as many slices per batch as their labelled half
    'sup': Method(
        'configs/supervised/'
        'sup_unet-s5-d16-fcn_1xb4-1k_synthetic-100pct-128px.py', semi=False),
    'mean_teacher': Method(f'configs/ssl/mean-teacher_{_SSL}.py'),
    'fixmatch': Method(f'configs/ssl/fixmatch_{_SSL}.py'),
    'unimatch': Method(f'configs/ssl/unimatch_{_SSL}.py'),
    'cps': Method(f'configs/ssl/cps_{_SSL}.py'),
    # CPS4 on Mean Teacher, the best baseline on the synthetic val cases,
    # with the VLM-weighted vote that the VB val cases chose over the
    # agreement rule (docs/results.md, SSL benchmark)
    'cps4': Method(f'configs/cps4/cps4-mean-teacher_{_SSL}_confidence.py',
                   stage1=True),
}


@dataclass(frozen=True)
class Cell:
    """One (method, label ratio, seed) run."""
    method: str
    ratio: float
    seed: int

    @property
    def name(self) -> str:
        return f'{self.method} {format_pct(self.ratio)}% seed {self.seed}'

    def folder(self, work_dir: str) -> str:
        return osp.join(work_dir, 'cells', self.method,
                        f'{format_pct(self.ratio)}pct', f'seed{self.seed}')

    def result_path(self, work_dir: str) -> str:
        """The cell's record; it exists once the cell is finished."""
        return osp.join(self.folder(work_dir), 'result.json')


def plan_cells(methods: Sequence[str], ratios: Sequence[float],
               seeds: Sequence[int]) -> Tuple[List[Cell], List[str]]:
    """The cells to run and notes on the ones left out.

    Semi-supervised methods have nothing to learn from at 100% labels (no
    unlabelled case is left), so only non-SSL methods run there.

    Raises:
        ValueError: An unknown method or a label ratio outside (0, 1].
    """
    unknown = [m for m in methods if m not in METHODS]
    if unknown:
        raise ValueError(f'unknown method(s) {unknown}; choose from '
                         f'{sorted(METHODS)}')
    for r in ratios:
        check_label_ratio(r)
    cells, notes = [], []
    for ratio in ratios:
        for method in methods:
            if METHODS[method].semi and ratio >= 1.0:
                notes.append(f'{method} at 100%: no unlabelled cases, not '
                             'run')
                continue
            cells += [Cell(method, ratio, s) for s in seeds]
    return cells, notes
