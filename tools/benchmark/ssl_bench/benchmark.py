"""The benchmark's driver, :class:`SSLBenchmark` (the steps it takes are
listed in the package docstring)."""
import json
import os
import os.path as osp
import time
from functools import partial
from typing import Iterator, List, Optional, Sequence, Tuple

from mmengine.config import Config
from mmengine.logging import print_log

from cps4.datasets.meta import read_meta
from cps4.datasets.spine_classes import anatomical_order
from cps4.datasets.splits import load_split
from cps4.utils.fileio import write_text_atomic
from .sweep import pseudo_label_summary, run_locked, val_metrics
from .cell_config import cell_config
from .data import choose_prompt_file, prepare_data
from .environment import environment
from .methods import (METHODS, STAGE1_CONFIG, Cell, LabelAmount, Method,
                      plan_cells)
from .report import finished_records, write_results
from .runs import (adabn_scores, agreement_dataset, best_record, dice_of,
                   order_scores, same_precision, train_test, val_record)
from .schedules import PRECISIONS, SCHEDULES

#: Test-time post-processes a finished cell can be scored with (rows
#: ``METHOD+<name>``), in table order.
POST_PROCESSES = ('order', 'adabn')


class SSLBenchmark:
    """Run a methods x labelled amounts x seeds benchmark in one work dir.

    Args:
        work_dir (str): Output folder (data, cells, results).
        data_root (str): Raw training dataset.
        layout (str): Its layout (``nnunet``, ``mrspineseg``, ``spider``,
            ``png2d``).
        methods (Sequence[str]): Names from :data:`.methods.METHODS`.
        ratios (Sequence[float]): Label ratios in (0, 1]; 1.0 is full
            supervision, the reference the tables divide by.
        seeds (Sequence[int]): Split and training seeds.
        schedule (str): Name from :data:`.schedules.SCHEDULES`.
        test_root (str, optional): Raw dataset (same layout and classes)
            whose every case is the test set, instead of the split's test
            cases.
        classes (str, optional): Class names for the converter.
        prompt_file (str, optional): Stage-1 prompt file.
        cps4_config (str, optional): Template of the ``cps4`` method
            (default: CPS4 on Mean Teacher).
        precision (str, optional): One of :data:`.schedules.PRECISIONS`;
            defaults to the schedule's. A work dir holds cells of one
            precision.
        labelled_cases (Sequence[int]): Numbers of labelled cases, the
            amounts the field reports label efficiency in (e.g. 1, 2, 4,
            8); columns before the ratios.
        stage1_config (str, optional): Template of the stage-1 runs
            (default :data:`.methods.STAGE1_CONFIG`), e.g. a variant with
            finer visual tokens; a work dir holds stage-1 models of one
            template, so use one work dir per stage-1 variant.
        order (bool): Also score every finished cell with the
            anatomical-order post-process, on its val and test cases (rows
            ``METHOD+order``); needs classes with an anatomical order.
        adabn (bool): Also score every finished cell that has unlabelled
            cases after AdaBN of its tested network on them (rows
            ``METHOD+adabn``, val and test).
    """

    def __init__(self, work_dir: str, data_root: str, layout: str,
                 methods: Sequence[str], ratios: Sequence[float],
                 seeds: Sequence[int], schedule: str = 'quick',
                 test_root: Optional[str] = None,
                 classes: Optional[str] = None,
                 prompt_file: Optional[str] = None,
                 cps4_config: Optional[str] = None,
                 precision: Optional[str] = None,
                 labelled_cases: Sequence[int] = (),
                 order: bool = False,
                 stage1_config: Optional[str] = None,
                 adabn: bool = False) -> None:
        if schedule not in SCHEDULES:
            raise ValueError(f'unknown schedule {schedule!r}; choose from '
                             f'{sorted(SCHEDULES)}')
        self.precision = precision or SCHEDULES[schedule].precision
        if self.precision not in PRECISIONS:
            raise ValueError(f'unknown precision {self.precision!r}; choose '
                             f'from {PRECISIONS}')
        self.work_dir = osp.abspath(work_dir)
        self.data_root, self.layout = data_root, layout
        self.methods = list(methods)
        self.ratios, self.labelled_cases = list(ratios), list(labelled_cases)
        self.amounts = LabelAmount.of(self.ratios, self.labelled_cases)
        self.order, self.adabn = order, adabn
        self.stage1_template = stage1_config or STAGE1_CONFIG
        if not self.amounts:
            raise ValueError('no labelled amount: give label ratios or '
                             'numbers of labelled cases')
        self.seeds, self.schedule_name = list(seeds), schedule
        self.schedule = SCHEDULES[schedule]
        self.test_root, self.classes = test_root, classes
        self.prompt_file = prompt_file
        self.method_table = dict(METHODS)
        if cps4_config:
            self.method_table['cps4'] = Method(cps4_config, stage1=True)
        self.cells, self.notes = plan_cells(self.methods, self.amounts,
                                            self.seeds)
        self.train_dir = osp.join(self.work_dir, 'data', 'train')
        self.test_dir = osp.join(self.work_dir, 'data', 'test')

    # -- data ------------------------------------------------------------
    def prepare(self) -> None:
        """Convert the data, write splits, choose the prompt file."""
        os.makedirs(self.work_dir, exist_ok=True)
        self.meta = prepare_data(self.data_root, self.layout, self.train_dir,
                                 self.seeds, self.ratios, self.classes,
                                 self.labelled_cases)
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
        if self.order and len(anatomical_order(self.meta['classes'])) < 2:
            raise ValueError(
                f'--order: the classes {self.meta["classes"]} have no '
                'anatomical order (fewer than two spine units)')
        if any(self.method_table[m].stage1 for m in self.methods):
            self.prompt = choose_prompt_file(self.meta['classes'],
                                             self.work_dir, self.prompt_file)

    def _n_labelled(self, amount: LabelAmount, seed: int) -> int:
        split = load_split(osp.join(self.train_dir, amount.split(seed)))
        return len(split['labelled'])

    # -- cells -----------------------------------------------------------
    def _stage1_folder(self, amount: LabelAmount, seed: int) -> str:
        return osp.join(self.work_dir, 'stage1', amount.tag, f'seed{seed}')

    def _stage1_config(self, amount: LabelAmount, seed: int) -> Config:
        return cell_config(self.stage1_template, self.train_dir,
                           amount.split(seed), self.num_classes,
                           self.schedule, stage1=True,
                           prompt_file=self.prompt, precision=self.precision)

    def _cell_config(self, cell: Cell,
                     vlm: Optional[Tuple[str, str]]) -> Config:
        method = self.method_table[cell.method]
        return cell_config(method.config, self.train_dir,
                           cell.amount.split(cell.seed),
                           self.num_classes, self.schedule, vlm=vlm,
                           predict_on=method.predict_on,
                           precision=self.precision)

    def stage1(self, amount: LabelAmount,
               seed: int) -> Tuple[Optional[dict], str]:
        """Train (or reuse) the stage-1 VLM of one split."""
        folder = self._stage1_folder(amount, seed)

        def run():
            metrics, ckpt, train_s, test_s = train_test(
                self._stage1_config(amount, seed), folder, seed, [])
            dice, per_class = dice_of(metrics)
            return dict(config=osp.join(folder, 'config.py'),
                        template=self.stage1_template,
                        checkpoint=ckpt, dice_mean=dice,
                        dice_per_class=per_class, train_s=round(train_s, 1),
                        test_s=round(test_s, 1), precision=self.precision,
                        val=val_metrics(folder), environment=environment())

        record, state = same_precision(
            self.precision,
            run_locked(folder, osp.join(folder, 'result.json'), run), folder)
        # records written before the key was added used the default
        template = (record or {}).get('template', STAGE1_CONFIG)
        if record is not None and template != self.stage1_template:
            raise ValueError(
                f'{folder} was trained from {template}, not from '
                f'{self.stage1_template}; use one --work-dir per stage-1 '
                'template')
        return record, state

    def _round2_folder(self, amount: LabelAmount, seed: int,
                       source: str) -> str:
        return osp.join(self.work_dir, 'stage1', amount.tag,
                        f'seed{seed}_round2_{source}')

    def stage1_round2(self, amount: LabelAmount, seed: int,
                      source: str) -> Tuple[Optional[dict], str]:
        """Train (or reuse) the second-round VLM of one split.

        The split's stage-1 VLM and the cell of method ``source`` (both
        trained first when missing) label its unlabelled cases where they
        agree (255 elsewhere; the hidden labels are never read); the same
        stage-1 template is then trained on the labelled plus the agreed
        cases, in ``stage1/<amount>/seed<S>_round2_<source>`` (the dataset
        in its ``data/``). Its val and test scores are those of the
        split's val and test cases, as for round 1.

        Returns:
            tuple: ``(record, state)`` as :meth:`stage1`; the record's
            ``earlier_train_s`` is the training time of the round-1 VLM
            and of the source cell.
        """
        folder = self._round2_folder(amount, seed, source)
        result_path = osp.join(folder, 'result.json')
        source_cell = Cell(source, amount, seed)
        s1 = src = None
        if not osp.isfile(result_path):
            s1, _ = self.stage1(amount, seed)
            if s1 is not None:
                src, _ = self.run_cell(source_cell)
            if src is None:  # another process is training one of them
                return None, 'busy'

        def run():
            data_dir = osp.join(folder, 'data')
            experts = [(s1['config'], s1['checkpoint']),
                       (osp.join(source_cell.folder(self.work_dir),
                                 'config.py'), src['checkpoint'])]
            split = agreement_dataset(self.train_dir, amount.split(seed),
                                      data_dir, experts,
                                      osp.join(folder, 'agreement.log'))
            cfg = cell_config(self.stage1_template, data_dir, split,
                              self.num_classes, self.schedule, stage1=True,
                              prompt_file=self.prompt,
                              precision=self.precision)
            metrics, ckpt, train_s, test_s = train_test(cfg, folder, seed,
                                                        [])
            dice, per_class = dice_of(metrics)
            agreement = read_meta(data_dir)['pseudo_labels']
            return dict(config=osp.join(folder, 'config.py'),
                        template=self.stage1_template, round=2,
                        source=source, experts=experts, split=split,
                        pseudo_labelled=len(agreement['pseudo_labelled']),
                        agreed_share=agreement['agreed_share'],
                        checkpoint=ckpt, dice_mean=dice,
                        dice_per_class=per_class, train_s=round(train_s, 1),
                        test_s=round(test_s, 1),
                        earlier_train_s=round(
                            s1['train_s'] + src['train_s'], 1),
                        precision=self.precision, val=val_metrics(folder))

        return same_precision(self.precision,
                              run_locked(folder, result_path, run), folder)

    def run_cell(self, cell: Cell) -> Tuple[Optional[dict], str]:
        """Train and test one cell; ``(record, state)``."""
        folder = cell.folder(self.work_dir)
        result_path = cell.result_path(self.work_dir)
        method = self.method_table[cell.method]
        vlm, stage1_s = None, 0.0
        if method.stage1 and not osp.isfile(result_path):
            if method.vlm_round2_from:
                s1, state = self.stage1_round2(cell.amount, cell.seed,
                                               method.vlm_round2_from)
            else:
                s1, state = self.stage1(cell.amount, cell.seed)
            if s1 is None:  # another process is training it: come back
                return None, 'busy'
            vlm = (s1['config'], s1['checkpoint'])
            # the stage-1 model belongs to this cell's split, whichever
            # process trained it, so its time is part of the cell's cost
            # (for a second VLM round: with the runs it was built from)
            stage1_s = s1['train_s'] + s1.get('earlier_train_s', 0.0)

        def run():
            metrics, ckpt, train_s, test_s = train_test(
                self._cell_config(cell, vlm), folder, cell.seed,
                self.test_options)
            dice, per_class = dice_of(metrics)
            record = dict(
                method=cell.method, labels=cell.amount.tag,
                label_ratio=cell.amount.ratio, seed=cell.seed,
                n_labelled_cases=self._n_labelled(cell.amount, cell.seed),
                dice_mean=dice, dice_per_class=per_class,
                train_s=round(train_s, 1), test_s=round(test_s, 1),
                schedule=self.schedule_name, config=method.config,
                split=cell.amount.split(cell.seed),
                test_set='test-root' if self.test_root else 'split test',
                checkpoint=ckpt, precision=self.precision,
                environment=environment())
            record.update(val_record(folder, method.predict_on))
            best = best_record(folder, record, self.test_options)
            if best is not None:
                record['best'] = best
            if method.stage1:
                record['stage1_train_s'] = stage1_s
            pseudo_labels = pseudo_label_summary(folder)
            if pseudo_labels is not None:
                record['pseudo_labels'] = pseudo_labels
            return record

        return same_precision(self.precision,
                              run_locked(folder, result_path, run), folder)

    def write_configs(self) -> List[str]:
        """Write the config of every stage-1 run and cell; train nothing.

        A CPS4 cell's config points at the checkpoint its stage-1 run will
        write (``iter_<stage1_iters>.pth``); the config of a second VLM
        round is not written (its dataset needs a trained stage 2). Useful to read what a cell
        runs, or to time it with
        ``tools/analysis/profile_train_throughput.py``.

        Returns:
            list[str]: The files written.
        """
        self.prepare()
        written = []

        def dump(cfg: Config, folder: str) -> None:
            os.makedirs(folder, exist_ok=True)
            # atomic: a second copy on the same work dir may be reading it
            write_text_atomic(osp.join(folder, 'config.py'), cfg.dump())
            written.append(osp.join(folder, 'config.py'))

        stage1_done = set()
        for cell in self.cells:
            vlm, method = None, self.method_table[cell.method]
            if method.stage1:
                folder = self._stage1_folder(cell.amount, cell.seed)
                if folder not in stage1_done:
                    dump(self._stage1_config(cell.amount, cell.seed), folder)
                    stage1_done.add(folder)
                if method.vlm_round2_from:  # its dataset needs stage 2 first
                    folder = self._round2_folder(cell.amount, cell.seed,
                                                 method.vlm_round2_from)
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
        self.score_post_processes(records)
        self._write(records)
        return records

    def _cell_records(self, records: List[dict]
                      ) -> Iterator[Tuple[int, Cell, dict]]:
        """``(index, cell, record)`` of every cell with a record (records
        written before amounts in cases, without ``labels``, have none)."""
        by_name = {(r['method'], r.get('labels'), r['seed']): r
                   for r in records}
        for i, cell in enumerate(self.cells, 1):
            record = by_name.get((cell.method, cell.amount.tag, cell.seed))
            if record is not None:
                yield i, cell, record

    def score_post_processes(self, records: List[dict]) -> None:
        """The "+order" and "+adabn" scores of finished cells, as asked
        (``order.json`` / ``adabn.json`` in each cell, computed once; cells
        another process is scoring are left). AdaBN needs unlabelled
        cases, so full-supervision cells get none."""
        for name in POST_PROCESSES:
            if not getattr(self, name):
                continue
            score = dict(order=order_scores, adabn=adabn_scores)[name]
            for i, cell, record in self._cell_records(records):
                if name == 'adabn' and cell.amount.full:
                    continue
                folder = cell.folder(self.work_dir)
                out, state = run_locked(
                    osp.join(folder, name), osp.join(folder, f'{name}.json'),
                    lambda: score(folder, record, self.test_options))
                if out is not None and state == 'done':
                    print_log(f'[{i}/{len(self.cells)}] {cell.name} +{name}:'
                              f' Dice {out["dice_mean"]:.2f} (val '
                              f'{out["val_dice"]:.2f})', logger='current')

    def _write(self, records: List[dict]) -> None:
        """Results with the "+best", "+order" and "+adabn" rows of the
        cells that have them."""
        rows, methods = list(records), list(self.methods)
        for _, cell, record in self._cell_records(records):
            best = record.get('best')
            if not best:
                continue
            row = f'{record["method"]}+best'
            rows.append(dict(record, method=row, pseudo_labels=None,
                             val_dice=best['val_dice'],
                             dice_mean=best['dice_mean'],
                             dice_per_class=best['dice_per_class']))
            if row not in methods:
                methods.append(row)
        for name in POST_PROCESSES:
            for _, cell, record in self._cell_records(records):
                path = osp.join(cell.folder(self.work_dir), f'{name}.json')
                if not osp.isfile(path):
                    continue
                with open(path) as f:
                    scores = json.load(f)
                row = f'{record["method"]}+{name}'
                rows.append(dict(record, method=row, pseudo_labels=None,
                                 **scores))
                if row not in methods:
                    methods.append(row)
        write_results(self.work_dir, rows, methods, self.amounts,
                      stage1=self._stage1_rows())

    def _stage1_rows(self) -> List[dict]:
        """The finished stage-1 models of this benchmark's splits (round 1
        and second rounds), with their AdaBN val score where
        ``adabn_val.json`` was written next to them."""
        folders = []
        for amount in self.amounts:
            for seed in self.seeds:
                folders.append((amount, seed, 'round 1',
                                self._stage1_folder(amount, seed)))
                for m in self.methods:
                    source = self.method_table[m].vlm_round2_from
                    if source:
                        folders.append((amount, seed,
                                        f'round 2 from {source}',
                                        self._round2_folder(amount, seed,
                                                            source)))
        rows = []
        for amount, seed, model, folder in folders:
            path = osp.join(folder, 'result.json')
            if not osp.isfile(path):
                continue
            row = dict(labels=amount.tag, seed=seed, model=model)
            for key, name in (('record', 'result.json'),
                              ('adabn', 'adabn_val.json')):
                file = osp.join(folder, name)
                if osp.isfile(file):
                    with open(file) as f:
                        row[key] = json.load(f)
            rows.append(row)
        return rows

    def run_stage1(self) -> List[dict]:
        """Train the stage-1 models the cells need, and nothing else.

        Lets the vision-text models of a sweep be pretrained apart from
        stage 2, e.g. side by side with the supervised cells; a later
        :meth:`run` reuses them. A second VLM round is trained here when
        its source cell has finished (its val then shows whether the round
        helps before any stage 2 uses it); otherwise it is left to
        :meth:`run`, which trains the source cell first.

        Returns:
            list[dict]: The stage-1 records, one per split that needs one,
            then those of the second rounds (runs another process is
            training are left out).
        """
        self.prepare()
        splits = sorted({(c.amount, c.seed) for c in self.cells
                         if self.method_table[c.method].stage1},
                        key=lambda s: (self.amounts.index(s[0]), s[1]))
        if not splits:
            raise ValueError(f'none of the methods {list(self.methods)} has '
                             'a stage 1')
        rounds = sorted({(c.amount, c.seed, self.method_table[
            c.method].vlm_round2_from) for c in self.cells
            if self.method_table[c.method].vlm_round2_from},
            key=lambda r: (self.amounts.index(r[0]), r[1], r[2]))

        def round2(amount, seed, source):
            if not osp.isfile(Cell(source, amount, seed).result_path(
                    self.work_dir)):
                return None, 'no source'
            return self.stage1_round2(amount, seed, source)

        jobs = [(f'stage 1 {amount.text} seed {seed}',
                 partial(self.stage1, amount, seed))
                for amount, seed in splits]
        jobs += [(f'stage 1 round 2 from {source} {amount.text} seed {seed}',
                  partial(round2, amount, seed, source))
                 for amount, seed, source in rounds]
        skipped = {'busy': 'being trained by another process, skipped',
                   'no source': 'its source cell is not finished, skipped '
                   '(a run without --stage1-only trains it)'}
        records = []
        for i, (name, train) in enumerate(jobs, 1):
            head = f'[{i}/{len(jobs)}] {name}'
            record, state = train()
            if state in skipped:
                print_log(f'{head}: {skipped[state]}', logger='current')
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
        records, missing = finished_records(self.cells, self.work_dir)
        if missing:
            print_log(f'{len(missing)} of {len(self.cells)} cells not '
                      f'finished, left out: {", ".join(missing)}',
                      logger='current', level=30)
        os.makedirs(self.work_dir, exist_ok=True)
        if self.order or self.adabn:
            self.prepare()
            self.score_post_processes(records)
        self._write(records)
        return records
