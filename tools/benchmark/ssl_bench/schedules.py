"""Schedules of the SSL benchmark, read from
``configs/_base_/schedules/ssl-benchmark_<name>.py``.

A schedule file holds what the schedule changes in a method's template
config:

- ``param_scheduler``, ``train_cfg`` and ``default_hooks`` at the top level,
  merged into every stage-2 and supervised cell (:meth:`Schedule.options`);
- the same three keys under ``stage1``, merged into the stage-1 runs;
- ``img_size``: the square size of every resize and crop;
- ``batch_size``: labelled slices per batch (an SSL batch adds as many
  unlabelled ones);
- ``rampup_iters``: ``model.semi_train_cfg.rampup_iters`` of SSL cells;
- ``precision``: the default of ``--precision``, one of :data:`PRECISIONS`.

A new schedule is a new file; ``--schedule`` lists every file found.
"""
from dataclasses import dataclass
from pathlib import Path
from typing import Dict

from mmengine.config import Config

REPO_ROOT = Path(__file__).resolve().parents[3]
SCHEDULE_DIR = REPO_ROOT / 'configs' / '_base_' / 'schedules'
_PREFIX = 'ssl-benchmark_'
_RUN_KEYS = ('param_scheduler', 'train_cfg', 'default_hooks')

#: ``fp32``: plain float32; ``bf16``: bfloat16 autocast
#: (``MixedPrecisionOptimWrapper``, ``val_cfg/test_cfg.fp16``) with
#: channels-last weights (``MemoryFormatHook``), the fast CPU setting.
PRECISIONS = ('fp32', 'bf16')


@dataclass(frozen=True)
class Schedule:
    """A benchmark schedule and the file it comes from.

    Attributes:
        file (str): The schedule file.
        img_size (int): Square training and test size of the slices.
        iters (int): Stage-2 (and supervised) training iterations.
        stage1_iters (int): Stage-1 training iterations.
        batch (int): Labelled slices per batch.
        rampup_iters (int): Unsupervised-loss ramp-up of SSL cells.
        precision (str): Default precision of the cells.
    """
    file: str
    img_size: int
    iters: int
    stage1_iters: int
    batch: int
    rampup_iters: int
    precision: str

    @classmethod
    def from_file(cls, path: str) -> 'Schedule':
        """Read a schedule file; a missing key is named in the error."""
        cfg = Config.fromfile(str(path))
        missing = [k for k in ('img_size', 'batch_size', 'rampup_iters',
                               'precision', 'stage1', *_RUN_KEYS)
                   if k not in cfg]
        if missing:
            raise KeyError(f'{path}: schedule keys {missing} missing; see '
                           'tools/benchmark/ssl_bench/schedules.py')
        if cfg.precision not in PRECISIONS:
            raise ValueError(f'{path}: precision {cfg.precision!r} is not '
                             f'one of {PRECISIONS}')
        return cls(str(path), cfg.img_size, cfg.train_cfg.max_iters,
                   cfg.stage1.train_cfg.max_iters, cfg.batch_size,
                   cfg.rampup_iters, cfg.precision)

    def options(self, stage1: bool = False) -> dict:
        """The keys to merge into a run's config (see the module doc)."""
        cfg = Config.fromfile(self.file)
        run = cfg.stage1 if stage1 else cfg
        return {k: run[k] for k in _RUN_KEYS}


def load_schedules(folder: Path = SCHEDULE_DIR) -> Dict[str, Schedule]:
    """Every ``ssl-benchmark_<name>.py`` of ``folder``, by name."""
    return {
        p.stem[len(_PREFIX):]: Schedule.from_file(str(p))
        for p in sorted(folder.glob(f'{_PREFIX}*.py'))
    }


#: Schedules by command-line name (``tiny`` only checks that the harness
#: runs; ``quick`` is the CPU setting; ``demo`` is ``make demo``'s; ``full``
#: is the GPU setting).
SCHEDULES: Dict[str, Schedule] = load_schedules()
