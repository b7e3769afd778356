"""Building blocks of experiment sweeps: subprocess runs, cell locks, test
metrics and split overrides.

Used by ``tools/benchmark/seed_sweep.py`` and the SSL benchmark
(``tools/benchmark/ssl_benchmark.py``). A *cell* is one training + test run in its own
folder; it is finished when its ``result.json`` exists, so an interrupted
sweep resumes where it stopped; a cell whose training was interrupted
after a checkpoint can resume from it (``train_and_test(resume=STAMP)``). A
cell being run holds a ``.lock`` file with
the owner's process id, so several sweeps over one work dir share the cells
out instead of running one twice; a lock whose process is gone is taken over.

The train and test entry points are the caller's: :func:`train_and_test`
takes the folder holding ``train.py`` and ``test.py`` and the working
directory the configs' relative paths resolve in, so nothing here depends on
where the package is installed.
"""
import glob
import json
import os
import os.path as osp
import re
import subprocess
import sys
import time
from contextlib import contextmanager
from datetime import datetime
from typing import Callable, Iterator, List, Optional, Sequence, Tuple

from mmengine.config import Config
from mmengine.logging import print_log

from cps4.utils.fileio import write_json_atomic


def run_logged(cmd: Sequence[str], log_path: str,
               cwd: Optional[str] = None) -> None:
    """Run ``cmd`` with its output going to ``log_path``.

    Args:
        cmd (Sequence[str]): Command and arguments.
        log_path (str): Log file (overwritten).
        cwd (str, optional): Working directory of the command. Defaults to
            the current one.

    Raises:
        RuntimeError: The command failed; the message names the log.
    """
    with open(log_path, 'w') as log:
        proc = subprocess.run(list(cmd), cwd=cwd, stdout=log,
                              stderr=subprocess.STDOUT)
    if proc.returncode != 0:
        raise RuntimeError(f'{" ".join(cmd)} failed with exit code '
                           f'{proc.returncode}; see {log_path}')


def last_checkpoint(run_dir: str, cwd: Optional[str] = None) -> str:
    """The checkpoint named in ``run_dir/last_checkpoint``.

    Args:
        run_dir (str): Work dir of a training run.
        cwd (str, optional): Working directory of that run, which a relative
            name is relative to. Defaults to the current one.
    """
    path = osp.join(run_dir, 'last_checkpoint')
    if not osp.isfile(path):
        raise FileNotFoundError(f'no last_checkpoint in {run_dir}')
    with open(path) as f:
        ckpt = f.read().strip()
    if not osp.isabs(ckpt):
        ckpt = osp.join(cwd or os.getcwd(), ckpt)
    if not osp.isfile(ckpt):
        raise FileNotFoundError(f'{path} names {ckpt}, which does not exist')
    return ckpt


def checkpoint_iter(checkpoint: str) -> Optional[int]:
    """The iteration of an ``iter_<N>.pth`` checkpoint; None for another
    name."""
    match = re.search(r'iter_(\d+)\.pth$', checkpoint)
    return int(match.group(1)) if match else None


#: mmengine's time stamp: ``2026/12/03 16:10:32`` in the log file,
#: ``12/03 16:10:32`` on the console.
_LOG_STAMP = re.compile(
    r'^(?:(\d{4})/)?(\d\d)/(\d\d) (\d\d):(\d\d):(\d\d) - ')


def attempt_seconds(run_dir: str, since: str = '') -> float:
    """Wall seconds of the training attempts logged in ``run_dir``.

    Each attempt of mmengine's runner logs to
    ``<YYYYmmdd_HHMMSS>/<YYYYmmdd_HHMMSS>.log``; its duration is taken from
    that start stamp to the last time-stamped line of the log, so an attempt
    that was killed counts up to its last log line.

    Args:
        run_dir (str): Work dir of the attempts.
        since (str): Only attempts whose stamp is not earlier count
            (``YYYYmmdd_HHMMSS``; empty: all).
    """
    total = 0.0
    for folder in glob.glob(osp.join(run_dir, '*_*')):
        stamp = osp.basename(folder)
        log = osp.join(folder, stamp + '.log')
        try:
            start = datetime.strptime(stamp, '%Y%m%d_%H%M%S')
        except ValueError:
            continue
        if stamp < since or not osp.isfile(log):
            continue
        last = None
        with open(log, errors='replace') as f:
            for line in f:
                match = _LOG_STAMP.match(line)
                if match:
                    last = match
        if last is None:
            continue
        year, month, day, hour, minute, sec = last.groups()
        year = int(year) if year else start.year + (int(month) < start.month)
        end = datetime(year, *map(int, (month, day, hour, minute, sec)))
        total += max((end - start).total_seconds(), 0.0)
    return total


def test_metrics(test_dir: str) -> dict:
    """Metrics dict of the newest mmengine test json under ``test_dir``."""
    files = sorted(glob.glob(osp.join(test_dir, '*', '*.json')))
    files = [f for f in files if osp.basename(osp.dirname(f)) + '.json'
             == osp.basename(f)]
    if not files:
        raise FileNotFoundError(f'no test metrics json under {test_dir}')
    with open(files[-1]) as f:
        return json.load(f)


def val_metrics(run_dir: str) -> Optional[dict]:
    """The last validation metrics a training run in ``run_dir`` logged.

    Read from mmengine's ``<timestamp>/vis_data/scalars.json`` (newest run
    first): the last record holding an ``mDice`` key (``mDice``, or
    ``teacher/mDice`` and ``student/mDice`` from ``TeacherStudentValLoop``).

    Returns:
        dict | None: The metrics (NaN, a class absent from every val
        volume, as None) and ``val_iter``, the iteration they were logged
        at; None when no validation was logged.
    """
    for path in sorted(glob.glob(osp.join(run_dir, '*', 'vis_data',
                                          'scalars.json')), reverse=True):
        last = None
        with open(path) as f:
            for line in f:
                record = json.loads(line)
                if any(k.split('/')[-1] == 'mDice' for k in record):
                    last = record
        if last is not None:
            out = {k: (None if v != v else v) for k, v in last.items()
                   if k not in ('step', 'time', 'data_time')}
            out['val_iter'] = last.get('step')
            return out
    return None


def pid_alive(pid: int) -> bool:
    """Whether a process with this id exists."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def acquire_lock(lock_path: str) -> bool:
    """Take a cell lock; False when a live process holds it.

    A lock left by a process that no longer exists is taken over.
    """
    for _ in range(2):
        try:
            fd = os.open(lock_path, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        except FileExistsError:
            try:
                with open(lock_path) as f:
                    owner = int(f.read().strip() or 0)
            except (OSError, ValueError):
                owner = 0
            if owner and pid_alive(owner):
                return False
            os.remove(lock_path)  # stale: its sweep was killed
            continue
        with os.fdopen(fd, 'w') as f:
            f.write(str(os.getpid()))
        return True
    return False


@contextmanager
def hold_lock(lock_path: str, poll_s: float = 1.0,
              waiting_message: Optional[str] = None) -> Iterator[None]:
    """Hold ``lock_path`` (see :func:`acquire_lock`) for the ``with`` block,
    waiting while another live process holds it.

    Args:
        lock_path (str): Lock file; its folder must exist.
        poll_s (float): Seconds between attempts.
        waiting_message (str, optional): Logged once when the lock is busy.
    """
    told = False
    while not acquire_lock(lock_path):
        if waiting_message and not told:
            print_log(waiting_message, logger='current')
            told = True
        time.sleep(poll_s)
    try:
        yield
    finally:
        os.remove(lock_path)


def dataset_overrides(config: str, key: str, value) -> List[str]:
    """``--cfg-options`` that set ``key`` on every dataset of ``config``.

    A semi-supervised training set is a ``ConcatDataset`` of a labelled and
    an unlabelled source; each of them gets the value.

    Args:
        config (str): Config file.
        key (str): Dataset argument, e.g. ``split`` or ``data_root``.
        value: Its value.

    Returns:
        list[str]: ``loader.dataset[.datasets.i].key=value`` items.
    """
    cfg = Config.fromfile(config)
    out = []
    for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        dataset = cfg.get(loader, {}).get('dataset', {})
        if dataset.get('type') == 'ConcatDataset':
            out += [
                f'{loader}.dataset.datasets.{i}.{key}={value}'
                for i in range(len(dataset['datasets']))
            ]
        else:
            out.append(f'{loader}.dataset.{key}={value}')
    return out


def split_overrides(config: str, split: str) -> List[str]:
    """``--cfg-options`` that point every dataset of ``config`` at ``split``.
    """
    return dataset_overrides(config, 'split', split)


def run_locked(cell_dir: str, result_path: str,
               fn: Callable[[], dict]) -> Tuple[Optional[dict], str]:
    """Run one cell under its lock and store its record.

    Args:
        cell_dir (str): The cell's folder (created; holds ``.lock``).
        result_path (str): The cell's record; its existence marks the cell
            finished.
        fn (Callable[[], dict]): Runs the cell and returns its record,
            written atomically to ``result_path``.

    Returns:
        tuple: ``(record, state)`` with state ``'cached'`` (finished
        earlier), ``'busy'`` (another process holds the lock; record None)
        or ``'done'`` (run now).
    """
    if osp.isfile(result_path):
        with open(result_path) as f:
            return json.load(f), 'cached'
    os.makedirs(cell_dir, exist_ok=True)
    lock = osp.join(cell_dir, '.lock')
    if not acquire_lock(lock):
        return None, 'busy'
    try:
        if osp.isfile(result_path):  # finished while we waited
            with open(result_path) as f:
                return json.load(f), 'cached'
        record = fn()
        write_json_atomic(result_path, record)
        return record, 'done'
    finally:
        os.remove(lock)


def train_and_test(config: str,
                   cell_dir: str,
                   options: Sequence[str] = (),
                   test_options: Sequence[str] = (),
                   checkpoint: str = 'last',
                   *,
                   tools_dir: str,
                   resume: Optional[str] = None,
                   cwd: Optional[str] = None) -> Tuple[dict, str, float,
                                                       float]:
    """``train.py`` then ``test.py`` of one config in a cell.

    Args:
        config (str): Config file.
        cell_dir (str): Work dir of the training run; the test writes to
            ``cell_dir/test``, the logs go to ``train.log`` and
            ``test.log``.
        options (Sequence[str]): ``--cfg-options`` items for both runs.
        test_options (Sequence[str]): Extra items for the test only.
        checkpoint (str): ``'last'`` (the final iteration) or a file name
            inside ``cell_dir``.
        tools_dir (str): Folder holding the entry points ``train.py`` and
            ``test.py`` (the repository's ``tools/``).
        cwd (str, optional): Working directory of both runs, where the
            config's relative paths (data roots, prompt files) resolve.
            Defaults to the current one.
        resume (str, optional): Start stamp (``YYYYmmdd_HHMMSS``) of an
            interrupted training of this config in ``cell_dir``: continue it
            from the checkpoint ``cell_dir/last_checkpoint`` names
            (``train.py --resume``); a checkpoint of the last iteration
            skips training. The train seconds then include those of the
            attempts since the stamp (:func:`attempt_seconds`), and
            ``cell_dir/resume.json`` records the checkpoint resumed from.
            The caller decides whether the earlier attempts ran the same
            config. None (default): train from the start.

    Returns:
        tuple: test metrics, checkpoint, train and test seconds.
    """
    py = sys.executable
    opts = ['--cfg-options', *options] if options else []
    t0 = time.time()
    train_py, test_py = (osp.join(tools_dir, 'train.py'),
                         osp.join(tools_dir, 'test.py'))
    for script in (train_py, test_py):
        if not osp.isfile(script):
            raise FileNotFoundError(
                f'{script} not found; tools_dir must be the folder holding '
                'the train.py and test.py entry points')
    earlier_s, train = 0.0, True
    if resume is not None:
        start = last_checkpoint(cell_dir, cwd)
        earlier_s = attempt_seconds(cell_dir, since=resume)
        max_iters = Config.fromfile(osp.join(
            cwd or os.getcwd(), config)).train_cfg.max_iters
        train = (checkpoint_iter(start) or 0) < max_iters
        write_json_atomic(osp.join(cell_dir, 'resume.json'), dict(
            checkpoint=osp.basename(start), earlier_attempts_s=round(
                earlier_s, 1), trained_to_the_end=not train))
        print_log(f'{cell_dir}: resuming from {osp.basename(start)} after '
                  f'{earlier_s:.0f} s of earlier attempts'
                  + ('' if train else '; training had finished, testing'),
                  logger='current')
    if train:
        run_logged([py, train_py, config, '--work-dir', cell_dir, *opts,
                    *(['--resume'] if resume is not None else [])],
                   osp.join(cell_dir, 'train.log'), cwd=cwd)
    train_s = time.time() - t0 + earlier_s
    ckpt = (last_checkpoint(cell_dir, cwd) if checkpoint == 'last' else
            osp.join(cell_dir, checkpoint))
    test_dir = osp.join(cell_dir, 'test')
    t0 = time.time()
    test_opts = [*options, *test_options]
    run_logged([py, test_py, config, ckpt, '--work-dir', test_dir,
                *(['--cfg-options', *test_opts] if test_opts else [])],
               osp.join(cell_dir, 'test.log'), cwd=cwd)
    return test_metrics(test_dir), ckpt, train_s, time.time() - t0


def pseudo_label_summary(cell_dir: str) -> Optional[dict]:
    """The pseudo-label summary a semi-supervised run wrote (mean over the
    last training iterations, against the hidden labels), if any."""
    path = osp.join(cell_dir, 'pseudo_label_quality.json')
    if not osp.isfile(path):
        return None
    with open(path) as f:
        return json.load(f)['summary']
