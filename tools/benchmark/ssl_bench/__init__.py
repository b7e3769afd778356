"""The SSL benchmark behind ``tools/benchmark/ssl_benchmark.py``: methods x
label ratios x seeds on one dataset, resumable, with a results table and a
Dice-vs-ratio plot.

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
from .methods import METHODS, STAGE1_CONFIG, Cell, Method, plan_cells
from .report import difference_table, results_table
from .schedules import PRECISIONS, SCHEDULES, Schedule

__all__ = [
    'METHODS', 'PRECISIONS', 'SCHEDULES', 'STAGE1_CONFIG', 'Cell', 'Method',
    'Schedule', 'SSLBenchmark', 'apply_schedule', 'cell_config',
    'choose_prompt_file', 'difference_table', 'plan_cells', 'prepare_data',
    'results_table'
]
