"""Train and test one benchmark run in its folder and read its numbers."""
import hashlib
import json
import logging
import os
import os.path as osp
import sys
from datetime import datetime
from pathlib import Path
from typing import Dict, Optional, Sequence, Tuple

from mmengine.config import Config
from mmengine.logging import print_log

from cps4.evaluation.functional import class_dice
from cps4.utils import (checkpoint_summary, logged_val_scores,
                        training_checkpoints)
from cps4.utils.fileio import write_json_atomic, write_text_atomic

from .sweep import (checkpoint_iter, last_checkpoint, run_logged,
                    test_metrics, train_and_test, val_metrics)
from .schedules import REPO_ROOT

#: The repository's ``tools/`` (``train.py``, ``test.py``).
TOOLS_DIR = str(REPO_ROOT / 'tools')


#: Record of a cell's training attempts: the SHA-256 of the config text
#: they train and the stamp of the first one.
ATTEMPT_FILE = 'attempt.json'


def train_test(cfg: Config, cell_dir: str, seed: int,
               test_options: Sequence[str]) -> Tuple[dict, str, float,
                                                     float]:
    """Write ``cfg`` to ``cell_dir/config.py``, train it there and test its
    last checkpoint with the repository's ``tools/train.py`` and
    ``tools/test.py`` (:func:`ssl_bench.sweep.train_and_test`), run in the
    repository root where the configs' relative paths resolve.

    A training of the same config that was interrupted after a checkpoint
    resumes from it (:func:`resumable`); otherwise ``cell_dir/attempt.json``
    starts a new record (the config's SHA-256 and the start stamp), a stale
    ``last_checkpoint`` is removed and training starts afresh."""
    os.makedirs(cell_dir, exist_ok=True)
    text = cfg.dump()
    digest = hashlib.sha256(text.encode()).hexdigest()
    resume = resumable(cell_dir, digest)
    if resume is None:
        pointer = osp.join(cell_dir, 'last_checkpoint')
        if osp.isfile(pointer):
            os.remove(pointer)
        write_json_atomic(osp.join(cell_dir, ATTEMPT_FILE), dict(
            config_sha256=digest,
            started=datetime.now().strftime('%Y%m%d_%H%M%S')))
    config = osp.join(cell_dir, 'config.py')
    write_text_atomic(config, text)
    return train_and_test(config, cell_dir, [f'randomness.seed={seed}'],
                          test_options, tools_dir=TOOLS_DIR,
                          cwd=str(REPO_ROOT), resume=resume)


def resumable(cell_dir: str, digest: str) -> Optional[str]:
    """The start stamp of an interrupted training in ``cell_dir`` of the
    config with SHA-256 ``digest``, or None when there is none to resume.

    Resumable: ``attempt.json`` names the same digest and
    ``last_checkpoint`` names an existing file (``config.py`` itself is
    not compared: the runner rewrites it with its own keys).
    """
    record = osp.join(cell_dir, ATTEMPT_FILE)
    if not osp.isfile(osp.join(cell_dir, 'last_checkpoint')):
        return None
    try:
        last_checkpoint(cell_dir, str(REPO_ROOT))
    except FileNotFoundError as err:
        print_log(f'{err}; training {cell_dir} afresh', logger='current',
                  level=logging.WARNING)
        return None
    state = json.loads(Path(record).read_text()) if osp.isfile(
        record) else {}
    if state.get('config_sha256') != digest:
        print_log(f'{cell_dir} holds a checkpoint of another config (or of '
                  'a run without attempt.json); training it afresh',
                  logger='current', level=logging.WARNING)
        return None
    return state['started']


def same_precision(precision: str, outcome: Tuple[Optional[dict], str],
                   folder: str) -> Tuple[Optional[dict], str]:
    """Pass ``outcome`` (``(record, state)`` of a run) on, refusing a
    finished run of another precision (older records without the key are
    fp32)."""
    record, _ = outcome
    if record is not None and record.get('precision', 'fp32') != precision:
        raise ValueError(
            f'{folder} was run in {record.get("precision", "fp32")}, '
            f'this benchmark runs {precision}; use another --work-dir per '
            'precision')
    return outcome


def dice_of(metrics: dict) -> Tuple[float, Dict[str, Optional[float]]]:
    """Test mDice and per-class Dice of a test-metric dict."""
    return metrics['mDice'], class_dice(metrics)


def val_record(folder: str, predict_on: str) -> dict:
    """``val`` (the last validation metrics of the run) and ``val_dice``
    (the val mDice of the network the cell is tested with)."""
    val = val_metrics(folder)
    if val is None:
        return dict(val=None, val_dice=None)
    dice = val.get('mDice', val.get(f'{predict_on}/mDice'))
    return dict(val=val, val_dice=dice)


def best_record(cell_dir: str, record: dict,
                test_options: Sequence[str]) -> Optional[dict]:
    """Scores of the best-on-val checkpoint of a finished cell.

    The best checkpoint is the one training kept with ``save_best='mDice'``
    (the val cases of the cell's split, validated at every checkpoint; for
    an SSL cell the network it is tested with). It is tested like the
    last one (``cell_dir/best_test``) unless it is the last one, whose
    scores it then shares.

    Args:
        cell_dir (str): The cell's folder.
        record (dict): The cell's record (``checkpoint``, ``dice_mean``,
            ``dice_per_class``).
        test_options (Sequence[str]): ``--cfg-options`` of the cell's test.

    Returns:
        dict | None: ``checkpoint``, ``iter``, ``val_dice`` (val mDice
        logged at that iteration), ``dice_mean``, ``dice_per_class`` and
        ``same_as_last``; None when the run kept no best checkpoint.
    """
    best = training_checkpoints(cell_dir)['best']
    if best is None:
        return None
    it = checkpoint_summary(best)['iter']
    out = dict(checkpoint=best, iter=it,
               val_dice=logged_val_scores(cell_dir).get(it),
               same_as_last=it == checkpoint_iter(record['checkpoint']))
    if out['same_as_last']:
        out.update(dice_mean=record['dice_mean'],
                   dice_per_class=record['dice_per_class'])
        return out
    test = test_checkpoint(osp.join(cell_dir, 'config.py'), best,
                           osp.join(cell_dir, 'best_test'), test_options)
    out['dice_mean'], out['dice_per_class'] = dice_of(test)
    return out


#: ``--cfg-options`` of the "+order" scores: the anatomical-order
#: post-process on every slice's prediction (HD95 off: only Dice is read).
ORDER_OPTIONS = ('test_evaluator.hd95=False',
                 'test_evaluator.refiner.type=AnatomicalOrderRefiner')


def test_checkpoint(config: str, checkpoint: str, out_dir: str,
                    options: Sequence[str]) -> dict:
    """``tools/test.py`` of one checkpoint into ``out_dir`` (log
    ``out_dir.log``); return its metrics."""
    opts = ['--cfg-options', *options] if options else []
    run_logged([sys.executable, osp.join(TOOLS_DIR, 'test.py'), config,
                checkpoint, '--work-dir', out_dir, *opts], out_dir + '.log',
               cwd=str(REPO_ROOT))
    return test_metrics(out_dir)


def order_scores(cell_dir: str, record: dict,
                 test_options: Sequence[str]) -> dict:
    """Val and test scores of a finished cell with the anatomical-order
    post-process (``AnatomicalOrderRefiner`` in the metric).

    Val is scored on the split's val cases (``subset=val``) of the same
    checkpoint, so a choice can be made on it; test as the cell's own test.

    Returns:
        dict: ``val_dice``, ``dice_mean`` and ``dice_per_class``.
    """
    config = osp.join(cell_dir, 'config.py')
    val = test_checkpoint(
        config, record['checkpoint'], osp.join(cell_dir, 'order_val'),
        [*ORDER_OPTIONS, 'test_dataloader.dataset.subset=val'])
    test = test_checkpoint(config, record['checkpoint'],
                           osp.join(cell_dir, 'order_test'),
                           [*ORDER_OPTIONS, *test_options])
    dice, per_class = dice_of(test)
    return dict(val_dice=val['mDice'], dice_mean=dice,
                dice_per_class=per_class)


def agreement_dataset(data_root: str, split: str, out_dir: str,
                      experts: Sequence[Tuple[str, str]],
                      log_path: str) -> str:
    """Label the unlabelled cases of ``split`` where all ``experts`` agree
    (``tools/dataset_converters/agreement_pseudo_labels.py``, a converted
    dataset in ``out_dir``; log ``log_path``).

    Returns:
        str: The split of the new dataset, relative to ``out_dir``.
    """
    cmd = [sys.executable,
           osp.join(TOOLS_DIR, 'dataset_converters',
                    'agreement_pseudo_labels.py'),
           data_root, split, out_dir, '--overwrite', '--no-progress']
    for config, checkpoint in experts:
        cmd += ['--expert', config, checkpoint]
    run_logged(cmd, log_path, cwd=str(REPO_ROOT))
    return f'splits/{Path(split).stem}_agreement.json'


def adabn_scores(cell_dir: str, record: dict,
                 test_options: Sequence[str]) -> dict:
    """Val and test scores of a finished cell after AdaBN: the BatchNorm
    statistics of its tested network re-estimated on the images of its
    split's unlabelled slices (``tools/analysis/adabn_eval.py``, which
    saves ``cell_dir/adabn/adapted.pth``), then ``tools/test.py`` on the
    val cases and as the cell's own test.

    Returns:
        dict: ``val_dice``, ``dice_mean`` and ``dice_per_class``.
    """
    config = osp.join(cell_dir, 'config.py')
    out = osp.join(cell_dir, 'adabn')
    checkpoint = osp.join(out, 'adapted.pth')
    os.makedirs(out, exist_ok=True)
    run_logged([sys.executable,
                osp.join(TOOLS_DIR, 'analysis', 'adabn_eval.py'), config,
                record['checkpoint'], '--stats-subset', 'unlabelled',
                '--subset', 'val', '--no-progress', '--out-json',
                osp.join(out, 'adabn_val.json'), '--save-checkpoint',
                checkpoint], osp.join(out, 'adabn_eval.log'),
               cwd=str(REPO_ROOT))
    val = test_checkpoint(config, checkpoint, osp.join(out, 'val'),
                          ['test_evaluator.hd95=False',
                           'test_dataloader.dataset.subset=val'])
    test = test_checkpoint(config, checkpoint, osp.join(out, 'test'),
                           ['test_evaluator.hd95=False', *test_options])
    dice, per_class = dice_of(test)
    return dict(val_dice=val['mDice'], dice_mean=dice,
                dice_per_class=per_class)
