"""The methods of the SSL benchmark, the labelled amounts and the cells
they run in."""
import os.path as osp
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Tuple

from cps4.datasets.splits import (check_label_ratio, check_n_labelled,
                                  format_pct, label_tag, split_filename)

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
        vlm_round2_from (str, optional): A method with a stage 1 whose
            cell of the same split, together with that split's stage-1
            VLM, labels the unlabelled cases where the two agree; the VLM
            is trained again on the labelled plus the agreed cases (a
            self-training round) and this method's cells use that VLM.
    """
    config: str
    semi: bool = True
    stage1: bool = False
    predict_on: str = 'student'
    vlm_round2_from: Optional[str] = None


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
    # bidirectional copy-paste (CVPR 2023), the 2D medical SSL baseline
    'bcp': Method(f'configs/ssl/bcp_{_SSL}.py'),
    # CPS4 on Mean Teacher, the best baseline on the synthetic val cases,
    # with the VLM-weighted vote that the VB val cases chose over the
    # agreement rule (docs/results.md, SSL benchmark)
    'cps4': Method(f'configs/cps4/cps4-mean-teacher_{_SSL}_confidence.py',
                   stage1=True),
    # variants on the way to the chosen one (docs/results.md): the VLM
    # weight per class follows the more reliable expert, on Mean Teacher
    # and on BCP; they share the stage-1 models of the cps4 cells
    'cps4_reliability': Method(
        f'configs/cps4/cps4-mean-teacher_{_SSL}_reliability.py',
        stage1=True),
    'cps4_bcp': Method(f'configs/cps4/cps4-bcp_{_SSL}_reliability.py',
                       stage1=True),
    # ... with AdaBN of the VLM on the unlabelled views, and with the
    # pseudo labels put in anatomical order
    'cps4_reliability_adabn': Method(
        f'configs/cps4/cps4-mean-teacher_{_SSL}_reliability-adabn.py',
        stage1=True),
    # ... and with the foreground mass of the fused target on its likeliest
    # level (ReliabilityWeightedFusion's foreground_first)
    'cps4_reliability_adabn_fgfirst': Method(
        f'configs/cps4/cps4-mean-teacher_{_SSL}_reliability-adabn-fgfirst.py',
        stage1=True),
    'cps4_reliability_order': Method(
        f'configs/cps4/cps4-mean-teacher_{_SSL}_reliability-order.py',
        stage1=True),
    # ... with the VLM of a second stage-1 round, trained on the labelled
    # cases plus the unlabelled ones where cps4_reliability and the VLM agree
    'cps4_reliability_vlm2': Method(
        f'configs/cps4/cps4-mean-teacher_{_SSL}_reliability.py',
        stage1=True, vlm_round2_from='cps4_reliability'),
    # ... the same round on the AdaBN variant (the choice at 1 case): its
    # cell and the round-1 VLM label the agreement dataset, and the VLM of
    # round 2 gets AdaBN in stage 2 as in the source
    'cps4_reliability_adabn_vlm2': Method(
        f'configs/cps4/cps4-mean-teacher_{_SSL}_reliability-adabn.py',
        stage1=True, vlm_round2_from='cps4_reliability_adabn'),
}


@dataclass(frozen=True)
class LabelAmount:
    """How much of a split's training pool is labelled: a ratio of it or a
    number of cases (the field reports label efficiency in cases).

    Attributes:
        ratio (float, optional): Labelled ratio in (0, 1].
        cases (int, optional): Number of labelled cases.
    """
    ratio: Optional[float] = None
    cases: Optional[int] = None

    def __post_init__(self):
        if (self.ratio is None) == (self.cases is None):
            raise ValueError('a labelled amount is a ratio or a number of '
                             f'cases, got {self.ratio!r} and {self.cases!r}')
        if self.ratio is not None:
            check_label_ratio(self.ratio)
        else:
            check_n_labelled(self.cases)

    @classmethod
    def of(cls, ratios: Sequence[float] = (),
           cases: Sequence[int] = ()) -> List['LabelAmount']:
        """The amounts of a benchmark: cases ascending, then ratios."""
        return ([cls(cases=n) for n in sorted(set(cases))]
                + [cls(ratio=r) for r in sorted(set(ratios))])

    @property
    def tag(self) -> str:
        """``'5pct'`` or ``'2cases'``: folder names and record key."""
        return label_tag(self.ratio, self.cases)

    @property
    def text(self) -> str:
        """``'5%'`` or ``'2 cases'``: logs and table heads."""
        if self.cases is not None:
            return f'{self.cases} case' + ('' if self.cases == 1 else 's')
        return f'{format_pct(self.ratio)}%'

    @property
    def full(self) -> bool:
        """All training cases labelled (nothing left for SSL)."""
        return self.ratio is not None and self.ratio >= 1.0

    def split(self, seed: int) -> str:
        """The split file of ``seed``, relative to the converted data."""
        return 'splits/' + split_filename(seed, self.ratio, self.cases)


@dataclass(frozen=True)
class Cell:
    """One (method, labelled amount, seed) run."""
    method: str
    amount: LabelAmount
    seed: int

    @property
    def name(self) -> str:
        return f'{self.method} {self.amount.text} seed {self.seed}'

    def folder(self, work_dir: str) -> str:
        return osp.join(work_dir, 'cells', self.method, self.amount.tag,
                        f'seed{self.seed}')

    def result_path(self, work_dir: str) -> str:
        """The cell's record; it exists once the cell is finished."""
        return osp.join(self.folder(work_dir), 'result.json')


def plan_cells(methods: Sequence[str], amounts: Sequence[LabelAmount],
               seeds: Sequence[int]) -> Tuple[List[Cell], List[str]]:
    """The cells to run and notes on the ones left out.

    Semi-supervised methods have nothing to learn from at 100% labels (no
    unlabelled case is left), so only non-SSL methods run there: that row
    is the full-supervision reference of the tables.

    Raises:
        ValueError: An unknown method.
    """
    unknown = [m for m in methods if m not in METHODS]
    if unknown:
        raise ValueError(f'unknown method(s) {unknown}; choose from '
                         f'{sorted(METHODS)}')
    for method in methods:
        source = METHODS[method].vlm_round2_from
        if source is not None and not (METHODS[method].stage1
                                       and METHODS[source].stage1):
            raise ValueError(f'{method}: a second VLM round needs a method '
                             f'with a stage 1 and one to learn from, not '
                             f'{source!r}')
    cells, notes = [], []
    for amount in amounts:
        for method in methods:
            if METHODS[method].semi and amount.full:
                notes.append(f'{method} at 100%: no unlabelled cases, not '
                             'run')
                continue
            cells += [Cell(method, amount, s) for s in seeds]
    return cells, notes
