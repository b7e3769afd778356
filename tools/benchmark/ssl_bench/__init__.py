"""The SSL benchmark behind ``tools/benchmark/ssl_benchmark.py``: methods x
labelled amounts (numbers of cases, or ratios) x seeds on one dataset,
resumable, with a results table and a Dice-vs-labelled-cases plot.

The benchmark

1. converts the raw dataset (any layout of
   :func:`cps4.datasets.converters.convert_dataset`) into ``W/data/train``
   and writes its case-level splits for every (seed, amount);
2. writes one self-contained config per cell from the method's template
   config (:mod:`.methods`), with data root, split, class count and the
   schedule file's keys (:mod:`.schedules`) set, so any converted dataset
   works with the same templates;
3. trains stage 1 once per (amount, seed) for the methods that need it
   (CPS4; for a method with a second VLM round, also the source cell and
   the round-2 VLM on the cases where the two agree), then trains and
   tests every cell with ``tools/train.py`` and ``tools/test.py``;
4. collects ``W/results.json`` (one record per cell), ``W/results.md``
   (mean +- std tables, each cell also as a fraction of full supervision)
   and ``W/dice_vs_cases.png`` (:mod:`.report`).

A finished cell (its ``result.json`` exists) is never run again, so an
interrupted benchmark resumes where it stopped; a cell (or stage-1 run)
killed during training resumes from its last checkpoint (every 500
iterations in ``quick``) when its config is unchanged (``attempt.json``),
and its train time counts the earlier attempts. Several benchmark
processes over one work dir share the cells out (cell locks, see
:mod:`ssl_bench.sweep`). Split seed and training seed are the cell's seed.
Hyper-parameters are the template configs'; the split's val cases are the
only ones any choice may look at, test cases (or ``--test-root``) never.

Modules, by concern: :mod:`.methods` (method table, cells),
:mod:`.schedules` (the schedule files of ``configs/_base_/schedules/``),
:mod:`.cell_config` (a cell's config from its template), :mod:`.data`
(conversion, splits, prompt file), :mod:`.runs` (train and test one run),
:mod:`.benchmark` (:class:`SSLBenchmark`) and :mod:`.report` (tables and
plot). The package is tooling of the repository, not of the installed
``cps4`` library: it runs the repository's ``tools/train.py`` and
``tools/test.py`` on the repository's configs.
"""
from .benchmark import SSLBenchmark
from .cell_config import apply_schedule, cell_config
from .data import choose_prompt_file, prepare_data
from .environment import environment, environment_table
from .methods import (METHODS, STAGE1_CONFIG, Cell, LabelAmount, Method,
                      plan_cells)
from .report import difference_table, results_table
from .schedules import PRECISIONS, SCHEDULES, Schedule

__all__ = [
    'METHODS', 'PRECISIONS', 'SCHEDULES', 'STAGE1_CONFIG', 'Cell',
    'LabelAmount', 'Method',
    'Schedule', 'SSLBenchmark', 'apply_schedule', 'cell_config',
    'choose_prompt_file', 'difference_table', 'environment',
    'environment_table', 'plan_cells', 'prepare_data', 'results_table'
]
