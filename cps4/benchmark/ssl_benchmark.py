"""One-command benchmark of semi-supervised methods: methods x label ratios
x seeds on one dataset, with a results table and a Dice-vs-ratio plot.

The benchmark

1. converts the raw dataset (any layout of
   :func:`cps4.datasets.converters.convert_dataset`) into ``W/data/train``
   and writes its case-level splits for every (seed, ratio);
2. writes one self-contained config per cell from the method's template
   config: data root, split, class count, image size and schedule set in
   Python, so any converted dataset works with the same templates;
3. trains stage 1 once per (ratio, seed) for the methods that need it
   (CPS4), then trains and tests every cell with ``tools/train.py`` and
   ``tools/test.py``;
4. collects ``W/results.json`` (one record per cell), ``W/results.md``
   (mean +- std table) and ``W/dice_vs_ratio.png``.

A finished cell (its ``result.json`` exists) is never run again, so an
interrupted benchmark resumes where it stopped, and several benchmark
processes over one work dir share the cells out (cell locks, see
:mod:`cps4.utils.sweep`). Split seed and training seed are the cell's seed.
Hyper-parameters are the template configs'; the split's val cases are the
only ones any choice may look at, test cases (or ``--test-root``) never.
"""
import json
import os
import os.path as osp
import statistics
import time
from dataclasses import dataclass
from typing import Dict, Iterable, List, Optional, Sequence, Tuple

from mmengine.config import Config
from mmengine.logging import print_log

from cps4.datasets.converters import convert_dataset
from cps4.datasets.meta import read_meta
from cps4.datasets.splits import (check_label_ratio, format_pct, load_split,
                                  write_splits)
from cps4.models.prompts import find_matching_prompt_file
from cps4.utils import enable_channels_last, enable_mixed_precision
from cps4.utils.atomic_file import atomic_file, save_figure
from cps4.utils.fileio import write_json_atomic
from cps4.utils.sweep import (REPO_ROOT, class_dice, hold_lock,
                              pseudo_label_summary, run_locked,
                              train_and_test, val_metrics)

STAGE1_CONFIG = 'configs/benchmark/cps4-vlm_r18_1xb4-1k_synthetic-128px.py'
_SSL = 'unet-s5-d16_fcn_2x4-500_synthetic-5pct-128px'


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
    'sup': Method(
        'configs/benchmark/sup_unet-s5-d16_fcn_1xb4-500_synthetic-128px.py',
        semi=False),
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
class Schedule:
    """Image size and iterations of a benchmark schedule.

    Attributes:
        img_size (int): Square training and test size of the slices.
        iters (int): Stage-2 (and supervised) training iterations.
        stage1_iters (int): Stage-1 training iterations.
        batch (int): Labelled slices per batch (an SSL batch adds as many
            unlabelled ones).
        precision (str): Default precision of the cells, one of
            :data:`PRECISIONS`.
    """
    img_size: int
    iters: int
    stage1_iters: int
    batch: int = 4
    precision: str = 'fp32'


#: ``fp32``: plain float32; ``bf16``: bfloat16 autocast
#: (``MixedPrecisionOptimWrapper``, ``val_cfg/test_cfg.fp16``) with
#: channels-last weights (``MemoryFormatHook``), the fast CPU setting.
PRECISIONS = ('fp32', 'bf16')


#: ``quick`` is the shortest schedule in which the UNet student leaves the
#: all-background plateau on MyoSegmenTUM (chosen on its val cases: 500
#: iterations stay there, 1000 reach 25 and 2000 reach 80 val mDice with all
#: labels) and runs in bf16 (val mDice of fp32 and bf16 over seeds 0-2 in
#: docs/results.md); ``demo`` is ``make demo``'s setting for the synthetic
#: data (chosen on its val cases, docs/results.md); ``full`` is the setting
#: to publish with on a GPU; ``tiny`` only checks that the harness runs.
SCHEDULES: Dict[str, Schedule] = {
    'tiny': Schedule(img_size=64, iters=4, stage1_iters=4, batch=2),
    'demo': Schedule(img_size=96, iters=800, stage1_iters=600,
                     precision='bf16'),
    'quick': Schedule(img_size=128, iters=2000, stage1_iters=1000,
                      precision='bf16'),
    'full': Schedule(img_size=256, iters=20000, stage1_iters=8000, batch=8),
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


# ----------------------------------------------------------------------
# data
# ----------------------------------------------------------------------
def prepare_data(data_root: str, layout: str, out_dir: str,
                 seeds: Iterable[int], ratios: Iterable[float],
                 classes: Optional[str] = None) -> dict:
    """Convert ``data_root`` into ``out_dir`` once and write its splits.

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
            convert_dataset(src, out_dir, layout=layout, classes=classes,
                            splits=False)
        write_splits(out_dir, seeds=sorted(set(seeds)),
                     label_ratios=sorted(set(ratios)))
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
        return osp.join(REPO_ROOT, str(found))
    path = osp.join(work_dir, 'prompts.json')
    write_json_atomic(path, dict(
        _comment='Written by the SSL benchmark: class names as prompts.',
        classes=[dict(name=c, phrase=c, description=c) for c in classes],
        templates=['a sagittal MR image of the {}.']))
    print_log(f'no prompt file matches the classes {list(classes)}; using '
              f'class names as prompts ({path}); pass --prompt-file for '
              'better ones', logger='current', level=30)
    return path


# ----------------------------------------------------------------------
# configs
# ----------------------------------------------------------------------
def _walk(node, fn):
    """Call ``fn`` on every dict nested in ``node`` (lists and dicts)."""
    if isinstance(node, dict):
        fn(node)
        for v in node.values():
            _walk(v, fn)
    elif isinstance(node, (list, tuple)):
        for v in node:
            _walk(v, fn)


def _datasets(cfg: Config) -> List[dict]:
    out = []
    for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        ds = cfg[loader]['dataset']
        out += ds['datasets'] if ds.get('type') == 'ConcatDataset' else [ds]
    return out


def apply_schedule(cfg: Config, iters: int, img_size: int,
                   batch: int) -> None:
    """Set image size, iterations and batch size of ``cfg`` in place.

    Resize, RandomResize and RandomCrop transforms get ``img_size``; the
    LR warm-up and decay, the unsupervised ramp-up, the validation and
    checkpoint intervals scale with ``iters``.
    """
    size = (img_size, img_size)

    def resize(t):
        if t.get('type') in ('Resize', 'RandomResize'):
            t['scale'] = size
        elif t.get('type') == 'RandomCrop':
            t['crop_size'] = size

    for ds in _datasets(cfg):
        _walk(ds.get('pipeline', []), resize)
    old = cfg.train_cfg['max_iters']
    warmup = max(1, min(50, iters // 10))
    for sched in cfg.param_scheduler:
        if sched['type'] == 'LinearLR':
            sched['end'] = warmup
        else:
            sched['begin'] = warmup if sched.get('begin', 0) else 0
            sched['end'] = iters
    cfg.train_cfg.update(max_iters=iters, val_interval=iters)
    cfg.default_hooks.checkpoint.update(interval=iters, max_keep_ckpts=1,
                                        save_best=None)
    cfg.default_hooks.logger['interval'] = min(50, iters)
    semi = cfg.model.get('semi_train_cfg')
    if semi is not None:
        semi['rampup_iters'] = round(semi['rampup_iters'] * iters / old)
    for hook in cfg.get('custom_hooks', []):
        if hook['type'] == 'PseudoLabelQualityHook':
            hook['interval'] = min(hook['interval'], iters)
    train = cfg.train_dataloader
    if train.get('sampler', {}).get('type') == 'MultiSourceSampler':
        train['batch_size'] = 2 * batch
        train['sampler']['batch_size'] = 2 * batch
    else:
        train['batch_size'] = batch


def cell_config(template: str, data_root: str, split: str, num_classes: int,
                schedule: Schedule, stage1: bool = False,
                prompt_file: Optional[str] = None,
                vlm: Optional[Tuple[str, str]] = None,
                predict_on: Optional[str] = None,
                precision: Optional[str] = None) -> Config:
    """The config of one cell, built from a method's template.

    Args:
        template (str): Template config file.
        data_root (str): Converted dataset folder.
        split (str): Split file relative to ``data_root``.
        num_classes (int): Classes of the dataset, background included.
        schedule (Schedule): Image size and iterations.
        stage1 (bool): ``template`` is a stage-1 VLM config.
        prompt_file (str, optional): Stage-1 prompt file.
        vlm (tuple[str, str], optional): Config and checkpoint of the
            stage-1 VLM, for CPS4 cells.
        predict_on (str, optional): ``semi_test_cfg.predict_on`` of an SSL
            config.
        precision (str, optional): One of :data:`PRECISIONS`. Defaults to
            the schedule's.
    """
    precision = precision or schedule.precision
    if precision not in PRECISIONS:
        raise ValueError(f'unknown precision {precision!r}; choose from '
                         f'{PRECISIONS}')
    cfg = Config.fromfile(osp.join(REPO_ROOT, template))
    for ds in _datasets(cfg):
        ds.update(data_root=data_root, split=split)
    apply_schedule(cfg, schedule.stage1_iters if stage1 else schedule.iters,
                   schedule.img_size, schedule.batch)
    if stage1:
        cfg.model.prompt['prompt_file'] = prompt_file
    else:

        def set_classes(node):
            if 'num_classes' in node and node.get('type', '').endswith(
                    'Head'):
                node['num_classes'] = num_classes

        _walk(cfg.model, set_classes)
    if vlm is not None:
        # the stage-1 cell's model, loaded from its checkpoint
        stage1_model = Config.fromfile(vlm[0]).model
        stage1_model.init_cfg = dict(type='Pretrained', checkpoint=vlm[1])
        cfg.model.vlm = stage1_model
    if predict_on is not None and 'semi_test_cfg' in cfg.model:
        cfg.model.semi_test_cfg['predict_on'] = predict_on
    if precision == 'bf16':
        enable_mixed_precision(cfg)
        enable_channels_last(cfg)
    return cfg


# ----------------------------------------------------------------------
# running
# ----------------------------------------------------------------------
def _train_test(cfg: Config, cell_dir: str, seed: int,
                test_options: Sequence[str]) -> Tuple[dict, str, float,
                                                      float]:
    """Write ``cfg`` to ``cell_dir/config.py``, train it there and test its
    last checkpoint (:func:`cps4.utils.sweep.train_and_test`)."""
    os.makedirs(cell_dir, exist_ok=True)
    config = osp.join(cell_dir, 'config.py')
    cfg.dump(config)
    return train_and_test(config, cell_dir, [f'randomness.seed={seed}'],
                          test_options)


def _dice(metrics: dict) -> Tuple[float, Dict[str, Optional[float]]]:
    return metrics['mDice'], class_dice(metrics)


def _val_record(folder: str, predict_on: str) -> dict:
    """``val`` (the last validation metrics of the run) and ``val_dice``
    (the val mDice of the network the cell is tested with)."""
    val = val_metrics(folder)
    if val is None:
        return dict(val=None, val_dice=None)
    dice = val.get('mDice', val.get(f'{predict_on}/mDice'))
    return dict(val=val, val_dice=dice)


class SSLBenchmark:
    """Run a methods x ratios x seeds benchmark in one work dir.

    Args:
        work_dir (str): Output folder (data, cells, results).
        data_root (str): Raw training dataset.
        layout (str): Its layout (``nnunet``, ``mrspineseg``, ``spider``,
            ``png2d``).
        methods (Sequence[str]): Names from :data:`METHODS`.
        ratios (Sequence[float]): Label ratios in (0, 1].
        seeds (Sequence[int]): Split and training seeds.
        schedule (str): Name from :data:`SCHEDULES`.
        test_root (str, optional): Raw dataset (same layout and classes)
            whose every case is the test set, instead of the split's test
            cases.
        classes (str, optional): Class names for the converter.
        prompt_file (str, optional): Stage-1 prompt file.
        cps4_config (str, optional): Template of the ``cps4`` method
            (default: CPS4 on Mean Teacher).
        precision (str, optional): One of :data:`PRECISIONS`; defaults to
            the schedule's. A work dir holds cells of one precision.
    """

    def __init__(self, work_dir: str, data_root: str, layout: str,
                 methods: Sequence[str], ratios: Sequence[float],
                 seeds: Sequence[int], schedule: str = 'quick',
                 test_root: Optional[str] = None,
                 classes: Optional[str] = None,
                 prompt_file: Optional[str] = None,
                 cps4_config: Optional[str] = None,
                 precision: Optional[str] = None) -> None:
        if schedule not in SCHEDULES:
            raise ValueError(f'unknown schedule {schedule!r}; choose from '
                             f'{sorted(SCHEDULES)}')
        self.precision = precision or SCHEDULES[schedule].precision
        if self.precision not in PRECISIONS:
            raise ValueError(f'unknown precision {self.precision!r}; choose '
                             f'from {PRECISIONS}')
        self.work_dir = osp.abspath(work_dir)
        self.data_root, self.layout = data_root, layout
        self.methods, self.ratios = list(methods), list(ratios)
        self.seeds, self.schedule_name = list(seeds), schedule
        self.schedule = SCHEDULES[schedule]
        self.test_root, self.classes = test_root, classes
        self.prompt_file = prompt_file
        self.method_table = dict(METHODS)
        if cps4_config:
            self.method_table['cps4'] = Method(cps4_config, stage1=True)
        self.cells, self.notes = plan_cells(self.methods, self.ratios,
                                            self.seeds)
        self.train_dir = osp.join(self.work_dir, 'data', 'train')
        self.test_dir = osp.join(self.work_dir, 'data', 'test')

    # -- data ------------------------------------------------------------
    def prepare(self) -> None:
        """Convert the data, write splits, choose the prompt file."""
        os.makedirs(self.work_dir, exist_ok=True)
        self.meta = prepare_data(self.data_root, self.layout, self.train_dir,
                                 self.seeds, self.ratios, self.classes)
        self.num_classes = len(self.meta['classes'])
        self.test_options: List[str] = []
        if self.test_root:
            test_meta = prepare_data(self.test_root, self.layout,
                                     self.test_dir, [0], [1.0], self.classes)
            if test_meta['classes'] != self.meta['classes']:
                raise ValueError(
                    f'--test-root classes {test_meta["classes"]} differ from '
                    f'the training classes {self.meta["classes"]}')
            self.test_options = [
                'test_dataloader.dataset.data_root=' + self.test_dir,
                'test_dataloader.dataset.split=splits/seed0_100pct.json',
                'test_dataloader.dataset.subset='
                '[labelled,unlabelled,val,test]'
            ]
        if any(self.method_table[m].stage1 for m in self.methods):
            self.prompt = choose_prompt_file(self.meta['classes'],
                                             self.work_dir, self.prompt_file)

    def _split(self, ratio: float, seed: int) -> str:
        return f'splits/seed{seed}_{format_pct(ratio)}pct.json'

    def _n_labelled(self, ratio: float, seed: int) -> int:
        split = load_split(osp.join(self.train_dir, self._split(ratio, seed)))
        return len(split['labelled'])

    # -- cells -----------------------------------------------------------
    def _stage1_folder(self, ratio: float, seed: int) -> str:
        return osp.join(self.work_dir, 'stage1', f'{format_pct(ratio)}pct',
                        f'seed{seed}')

    def _stage1_config(self, ratio: float, seed: int) -> Config:
        return cell_config(STAGE1_CONFIG, self.train_dir,
                           self._split(ratio, seed), self.num_classes,
                           self.schedule, stage1=True,
                           prompt_file=self.prompt, precision=self.precision)

    def _cell_config(self, cell: Cell,
                     vlm: Optional[Tuple[str, str]]) -> Config:
        method = self.method_table[cell.method]
        return cell_config(method.config, self.train_dir,
                           self._split(cell.ratio, cell.seed),
                           self.num_classes, self.schedule, vlm=vlm,
                           predict_on=method.predict_on,
                           precision=self.precision)

    def stage1(self, ratio: float, seed: int) -> Tuple[Optional[dict], str]:
        """Train (or reuse) the stage-1 VLM of one split."""
        folder = self._stage1_folder(ratio, seed)

        def run():
            metrics, ckpt, train_s, test_s = _train_test(
                self._stage1_config(ratio, seed), folder, seed, [])
            dice, per_class = _dice(metrics)
            return dict(config=osp.join(folder, 'config.py'),
                        checkpoint=ckpt, dice_mean=dice,
                        dice_per_class=per_class, train_s=round(train_s, 1),
                        test_s=round(test_s, 1), precision=self.precision,
                        val=val_metrics(folder))

        return self._checked(
            run_locked(folder, osp.join(folder, 'result.json'), run), folder)

    def _checked(self, outcome: Tuple[Optional[dict], str],
                 folder: str) -> Tuple[Optional[dict], str]:
        """Refuse a finished run of another precision (older records
        without the key are fp32)."""
        record, state = outcome
        if record is not None and record.get('precision',
                                             'fp32') != self.precision:
            raise ValueError(
                f'{folder} was run in {record.get("precision", "fp32")}, '
                f'this benchmark runs {self.precision}; use another '
                '--work-dir per precision')
        return outcome

    def run_cell(self, cell: Cell) -> Tuple[Optional[dict], str]:
        """Train and test one cell; ``(record, state)``."""
        folder = cell.folder(self.work_dir)
        result_path = cell.result_path(self.work_dir)
        method = self.method_table[cell.method]
        vlm, stage1_s = None, 0.0
        if method.stage1 and not osp.isfile(result_path):
            s1, state = self.stage1(cell.ratio, cell.seed)
            if s1 is None:  # another process is training it: come back
                return None, 'busy'
            vlm = (s1['config'], s1['checkpoint'])
            # the stage-1 model belongs to this cell's split, whichever
            # process trained it, so its time is part of the cell's cost
            stage1_s = s1['train_s']

        def run():
            metrics, ckpt, train_s, test_s = _train_test(
                self._cell_config(cell, vlm), folder, cell.seed,
                self.test_options)
            dice, per_class = _dice(metrics)
            record = dict(
                method=cell.method, label_ratio=cell.ratio, seed=cell.seed,
                n_labelled_cases=self._n_labelled(cell.ratio, cell.seed),
                dice_mean=dice, dice_per_class=per_class,
                train_s=round(train_s, 1), test_s=round(test_s, 1),
                schedule=self.schedule_name, config=method.config,
                split=self._split(cell.ratio, cell.seed),
                test_set='test-root' if self.test_root else 'split test',
                checkpoint=ckpt, precision=self.precision)
            record.update(_val_record(folder, method.predict_on))
            if method.stage1:
                record['stage1_train_s'] = stage1_s
            pseudo_labels = pseudo_label_summary(folder)
            if pseudo_labels is not None:
                record['pseudo_labels'] = pseudo_labels
            return record

        return self._checked(run_locked(folder, result_path, run), folder)

    def write_configs(self) -> List[str]:
        """Write the config of every stage-1 run and cell; train nothing.

        A CPS4 cell's config points at the checkpoint its stage-1 run will
        write (``iter_<stage1_iters>.pth``). Useful to read what a cell
        runs, or to time it with
        ``tools/analysis/benchmark_train_throughput.py``.

        Returns:
            list[str]: The files written.
        """
        self.prepare()
        written = []

        def dump(cfg: Config, folder: str) -> None:
            os.makedirs(folder, exist_ok=True)
            cfg.dump(osp.join(folder, 'config.py'))
            written.append(osp.join(folder, 'config.py'))

        stage1_done = set()
        for cell in self.cells:
            vlm = None
            if self.method_table[cell.method].stage1:
                folder = self._stage1_folder(cell.ratio, cell.seed)
                if folder not in stage1_done:
                    dump(self._stage1_config(cell.ratio, cell.seed), folder)
                    stage1_done.add(folder)
                vlm = (osp.join(folder, 'config.py'),
                       osp.join(folder,
                                f'iter_{self.schedule.stage1_iters}.pth'))
            dump(self._cell_config(cell, vlm), cell.folder(self.work_dir))
        for path in written:
            print_log(f'wrote {path}', logger='current')
        return written

    def run(self) -> List[dict]:
        """Run every cell (skipping finished ones) and write the results."""
        self.prepare()
        for note in self.notes:
            print_log(note, logger='current')
        records, t_start, ran = [], time.time(), 0
        for i, cell in enumerate(self.cells, 1):
            t0 = time.time()
            head = f'[{i}/{len(self.cells)}] {cell.name}'
            if not osp.isfile(cell.result_path(self.work_dir)):
                print_log(f'{head}: training and testing', logger='current')
            record, state = self.run_cell(cell)
            if state == 'busy':
                print_log(f'{head}: being run by another process, skipped',
                          logger='current')
                continue
            records.append(record)
            if state == 'cached':
                msg = 'finished earlier'
            else:
                ran += 1
                elapsed = time.time() - t_start
                left = len(self.cells) - i
                msg = (f'{time.time() - t0:.0f} s; about '
                       f'{elapsed / ran * left / 60:.0f} min left')
            print_log(f'{head}: Dice {record["dice_mean"]:.2f} ({msg})',
                      logger='current')
        self.write_results(records)
        return records

    def run_stage1(self) -> List[dict]:
        """Train the stage-1 models the cells need, and nothing else.

        Lets the vision-text models of a sweep be pretrained apart from
        stage 2, e.g. side by side with the supervised cells; a later
        :meth:`run` reuses them.

        Returns:
            list[dict]: The stage-1 records, one per split that needs one
            (splits another process is training are left out).
        """
        self.prepare()
        splits = sorted({(c.ratio, c.seed) for c in self.cells
                         if self.method_table[c.method].stage1})
        if not splits:
            raise ValueError(f'none of the methods {list(self.methods)} has '
                             'a stage 1')
        records = []
        for i, (ratio, seed) in enumerate(splits, 1):
            head = (f'[{i}/{len(splits)}] stage 1 {format_pct(ratio)}% '
                    f'seed {seed}')
            record, state = self.stage1(ratio, seed)
            if state == 'busy':
                print_log(f'{head}: being trained by another process, '
                          'skipped', logger='current')
                continue
            print_log(f'{head}: Dice {record["dice_mean"]:.2f} ({state})',
                      logger='current')
            records.append(record)
        return records

    def summarize(self) -> List[dict]:
        """Write the results of the cells finished so far; train nothing.

        Cells not finished yet are listed in the log and left out of the
        tables, so a long run can be looked at while it is going on.
        """
        records, missing = [], []
        for cell in self.cells:
            path = cell.result_path(self.work_dir)
            if osp.isfile(path):
                with open(path) as f:
                    records.append(json.load(f))
            else:
                missing.append(cell.name)
        if missing:
            print_log(f'{len(missing)} of {len(self.cells)} cells not '
                      f'finished, left out: {", ".join(missing)}',
                      logger='current', level=30)
        os.makedirs(self.work_dir, exist_ok=True)
        self.write_results(records)
        return records

    # -- results ---------------------------------------------------------
    def write_results(self, records: List[dict]) -> None:
        """``results.json``, ``results.md`` and ``dice_vs_ratio.png``."""
        write_json_atomic(osp.join(self.work_dir, 'results.json'), records)
        table = results_table(records, self.methods, self.ratios)
        shown = (
            '\n## Val mDice (val cases of each split; the network each cell '
            'is tested with)\n\n'
            + results_table(records, self.methods, self.ratios,
                            key='val_dice'))
        diff = difference_table(records, self.methods, self.ratios)
        if diff:
            shown += ('\n## Difference to sup, paired by seed (test; val '
                      'in brackets)\n\n' + diff)
        pl = pseudo_label_table(records)
        if pl:
            shown += '\n## Pseudo labels (last training iterations)\n\n' + pl
        per_class = ('\n## Dice per class (mean over seeds)\n\n'
                     + per_class_table(records, self.methods, self.ratios))
        with atomic_file(osp.join(self.work_dir, 'results.md')) as tmp:
            with open(tmp, 'w') as f:
                f.write(table + shown + per_class)
        if records:
            plot_dice_vs_ratio(records, self.methods,
                               osp.join(self.work_dir, 'dice_vs_ratio.png'))
        print_log('\n' + table + shown, logger='current')


def _mean_std(vals: Sequence[float]) -> str:
    if not vals:
        return '-'
    if len(vals) == 1:
        return f'{vals[0]:.2f} (1 seed)'
    return f'{statistics.mean(vals):.2f} +- {statistics.stdev(vals):.2f}'


def results_table(records: Sequence[dict], methods: Sequence[str],
                  ratios: Sequence[float], key: str = 'dice_mean') -> str:
    """Markdown table: methods x ratios, Dice mean +- sample std over seeds,
    with the number of labelled cases per ratio.

    Args:
        key (str): The record's value to tabulate: ``dice_mean`` (test) or
            ``val_dice``; records without it are left out.
    """
    n_lab = {}
    for r in records:
        n_lab.setdefault(r['label_ratio'], set()).add(r['n_labelled_cases'])
    ratios = sorted(ratios)
    heads = []
    for ratio in ratios:
        n = sorted(n_lab.get(ratio, ()))
        word = 'case' if n == [1] else 'cases'
        heads.append(f'{format_pct(ratio)}% ('
                     + ('/'.join(map(str, n)) if n else '?') + f' {word})')
    lines = ['| method | ' + ' | '.join(heads) + ' |',
             '| --- |' + ' --- |' * len(ratios)]
    for m in methods:
        cells = []
        for ratio in ratios:
            vals = [r[key] for r in records
                    if r['method'] == m and r['label_ratio'] == ratio
                    and r.get(key) is not None]
            cells.append(_mean_std(vals))
        lines.append(f'| {m} | ' + ' | '.join(cells) + ' |')
    return '\n'.join(lines) + '\n'


def difference_table(records: Sequence[dict], methods: Sequence[str],
                     ratios: Sequence[float], reference: str = 'sup') -> str:
    """Markdown table: each method minus ``reference``, paired by seed.

    A cell reads ``+3.10 (+2.50), 2/3 seeds``: the mean over the seeds both
    ran of the test mDice difference, the same for val mDice in brackets,
    and on how many of those seeds the method's test mDice is higher. Empty
    when ``reference`` was not run.
    """
    by_key = {(r['method'], r['label_ratio'], r['seed']): r for r in records}
    others = [m for m in methods if m != reference]
    if reference not in methods or not others:
        return ''
    ratios = sorted(ratios)
    lines = ['| method | ' + ' | '.join(f'{format_pct(r)}%' for r in ratios)
             + ' |', '| --- |' + ' --- |' * len(ratios)]
    for m in others:
        cells = []
        for ratio in ratios:
            pairs = [(r, by_key[(reference, ratio, r['seed'])])
                     for r in records
                     if r['method'] == m and r['label_ratio'] == ratio
                     and (reference, ratio, r['seed']) in by_key]
            if not pairs:
                cells.append('-')
                continue
            test = [a['dice_mean'] - b['dice_mean'] for a, b in pairs]
            val = [a['val_dice'] - b['val_dice'] for a, b in pairs
                   if a.get('val_dice') is not None
                   and b.get('val_dice') is not None]
            text = f'{statistics.mean(test):+.2f}'
            if val:
                text += f' ({statistics.mean(val):+.2f})'
            better = sum(d > 0 for d in test)
            cells.append(f'{text}, {better}/{len(test)} seeds')
        lines.append(f'| {m} | ' + ' | '.join(cells) + ' |')
    return '\n'.join(lines) + '\n'


def per_class_table(records: Sequence[dict], methods: Sequence[str],
                    ratios: Sequence[float]) -> str:
    """Markdown table: mean Dice per class (rows) for each method and
    ratio (columns), over the seeds run; classes absent from every test
    volume of a seed are left out of that seed's mean."""
    cols = [(m, r) for r in sorted(ratios) for m in methods
            if any(x['method'] == m and x['label_ratio'] == r
                   for x in records)]
    classes = []
    for x in records:
        classes += [c for c in x['dice_per_class'] if c not in classes]
    lines = ['| class | ' + ' | '.join(f'{m} {format_pct(r)}%'
                                       for m, r in cols) + ' |',
             '| --- |' + ' --- |' * len(cols)]
    for c in classes:
        cells = []
        for m, r in cols:
            vals = [x['dice_per_class'].get(c) for x in records
                    if x['method'] == m and x['label_ratio'] == r]
            vals = [v for v in vals if v is not None]
            cells.append(f'{statistics.mean(vals):.1f}' if vals else '-')
        lines.append(f'| {c} | ' + ' | '.join(cells) + ' |')
    return '\n'.join(lines) + '\n'


def pseudo_label_table(records: Sequence[dict]) -> str:
    """Markdown table of the pseudo-label Dice (percent, mean over the last
    training iterations, against the hidden labels) of every SSL cell."""
    rows = [x for x in records if x.get('pseudo_labels')]
    if not rows:
        return ''
    keys = ['pl_dice_teacher', 'pl_dice_vlm', 'pl_dice_fused',
            'pl_dice_masked', 'pl_mask_ratio']
    keys = [k for k in keys if any(k in x['pseudo_labels'] for x in rows)]
    lines = ['| method | ratio | seed | ' + ' | '.join(
        k[len('pl_'):] for k in keys) + ' |',
             '| --- | --- | --- |' + ' --- |' * len(keys)]
    for x in rows:
        pl = x['pseudo_labels']
        cells = [f'{100 * pl[k]:.1f}' if k in pl else '-' for k in keys]
        lines.append(f'| {x["method"]} | {format_pct(x["label_ratio"])}% | '
                     f'{x["seed"]} | ' + ' | '.join(cells) + ' |')
    return '\n'.join(lines) + '\n'


def plot_dice_vs_ratio(records: Sequence[dict], methods: Sequence[str],
                       path: str) -> None:
    """Dice (mean +- std over seeds) against the label ratio, per method;
    written atomically."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.5, 4))
    for m in methods:
        by_ratio = {}
        for r in records:
            if r['method'] == m:
                by_ratio.setdefault(r['label_ratio'], []).append(
                    r['dice_mean'])
        if not by_ratio:
            continue
        xs = sorted(by_ratio)
        means = [statistics.mean(by_ratio[x]) for x in xs]
        stds = [statistics.stdev(by_ratio[x]) if len(by_ratio[x]) > 1 else 0
                for x in xs]
        ax.errorbar([100 * x for x in xs], means, yerr=stds, marker='o',
                    capsize=3, label=m)
    ax.set_xscale('log')
    ax.set_xlabel('labelled cases (% of the training pool)')
    ax.set_ylabel('volume Dice (%)')
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    save_figure(fig, path)

