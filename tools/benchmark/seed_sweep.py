"""Train and test configs over several seeds and tabulate volume Dice.

Each cell (config, seed) runs ``tools/train.py`` then ``tools/test.py`` on
the last checkpoint, with split seed and training seed both set to the
cell's seed: the labelled cases, val cases and test cases of
``splits/seed{S}_{ratio}.json`` and ``randomness.seed=S``. Finished cells
(a ``result.json`` in their folder) are not run again, so an interrupted
sweep resumes where it stopped. A cell being run holds a ``.lock`` file
with the owner's process id, so several sweeps over the same work dir (for
example one per CPU core, each given the configs in a different order) share
the cells out instead of running one twice; a lock whose process is gone is
taken over.

Example::

    python tools/benchmark/seed_sweep.py \\
        configs/cps4/cps4-vlm_r18_1xb4-1k_synthetic-5pct-128px.py \\
        configs/cps4/cps4-vlm_r18_1xb4-1k_synthetic-5pct-128px_no-attn-losses.py \\
        --seeds 0 1 2 --ratio 5pct --work-dir work_dirs/sweep_stage1

Writes ``WORK_DIR/results.json`` (one record per cell) and
``WORK_DIR/results.md`` (mean +- sample std over seeds, per-seed values
and per-class means).
"""
import argparse
import json
import os
import os.path as osp
import statistics
import time

from mmengine.logging import MMLogger

from cps4.evaluation.functional import class_dice

# the sweep building blocks, shared with the SSL benchmark next to this file
from ssl_bench.sweep import (pseudo_label_summary, run_locked,
                             split_overrides, train_and_test)

TOOLS_DIR = osp.dirname(osp.dirname(osp.abspath(__file__)))
# configs name data and prompt files relative to the repository root
ROOT = osp.dirname(TOOLS_DIR)


def parse_args():
    parser = argparse.ArgumentParser(
        description='Train/test configs over seeds and tabulate mDice.')
    parser.add_argument('configs', nargs='+', help='config files')
    parser.add_argument('--seeds', nargs='+', type=int, default=[0, 1, 2])
    parser.add_argument(
        '--ratio', default='5pct',
        help='labelled ratio tag of the split files, e.g. 5pct')
    parser.add_argument('--work-dir', required=True)
    parser.add_argument(
        '--checkpoint', default='last',
        help='"last" (final iteration) or a file name inside the run folder')
    parser.add_argument(
        '--cfg-options', nargs='+', default=[],
        help='extra key=value overrides passed to train.py and test.py; '
        '"{seed}" is replaced by the cell\'s seed, e.g. '
        'model.vlm.init_cfg.checkpoint=W/seed{seed}/iter_1000.pth')
    parser.add_argument(
        '--test-cfg-options', nargs='+', default=[],
        help='extra key=value overrides passed to test.py only')
    parser.add_argument(
        '--summary-only', action='store_true',
        help='tabulate the finished cells without running any')
    return parser.parse_args()


def run_cell(config, seed, ratio, work_dir, args):
    """Train and test one (config, seed) cell.

    Returns:
        tuple: ``(record, state)`` with state ``'done'`` (run now),
        ``'cached'`` (finished earlier), ``'busy'`` (another sweep holds
        the cell) or ``'missing'`` (not run, ``--summary-only``); record is
        None for the last two.
    """
    name = osp.splitext(osp.basename(config))[0]
    cell_dir = osp.join(work_dir, name, f'seed{seed}')
    result_path = osp.join(cell_dir, 'result.json')
    if args.summary_only and not osp.isfile(result_path):
        return None, 'missing'
    return run_locked(
        cell_dir, result_path,
        lambda: _train_and_test(config, seed, ratio, cell_dir, args))


def _train_and_test(config, seed, ratio, cell_dir, args):
    split = f'splits/seed{seed}_{ratio}.json'
    overrides = [f'randomness.seed={seed}'] + split_overrides(
        config, split) + [o.format(seed=seed) for o in args.cfg_options]
    metrics, ckpt, train_s, test_s = train_and_test(
        config, cell_dir, overrides, args.test_cfg_options, args.checkpoint,
        tools_dir=TOOLS_DIR, cwd=ROOT)
    record = dict(
        config=osp.relpath(osp.abspath(config), ROOT),
        seed=seed,
        split=split,
        checkpoint=osp.relpath(ckpt, ROOT),
        mDice=metrics['mDice'],
        dice_per_class=class_dice(metrics),
        train_s=round(train_s, 1),
        test_s=round(test_s, 1))
    pseudo_labels = pseudo_label_summary(cell_dir)
    if pseudo_labels is not None:
        # mean over the last 100 training iterations, hidden ground truth
        record['pseudo_labels'] = pseudo_labels
    return record


def summarise(records):
    """Markdown table: mean +- std and per-seed mDice per config."""
    by_cfg = {}
    for r in records:
        by_cfg.setdefault(r['config'], []).append(r)
    lines = ['| config | mDice mean +- std | per seed |',
             '| --- | --- | --- |']
    for cfg, rows in by_cfg.items():
        vals = [r['mDice'] for r in sorted(rows, key=lambda r: r['seed'])]
        std = statistics.stdev(vals) if len(vals) > 1 else 0.0
        per_seed = ', '.join(
            f's{r["seed"]}: {r["mDice"]:.2f}'
            for r in sorted(rows, key=lambda r: r['seed']))
        lines.append(f'| `{cfg}` | {statistics.mean(vals):.2f} +- '
                     f'{std:.2f} | {per_seed} |')
    classes = []
    for r in records:
        for c in r['dice_per_class']:
            if c not in classes:
                classes.append(c)
    if classes:
        lines += ['', '| class | ' + ' | '.join(
            osp.splitext(osp.basename(c))[0] for c in by_cfg) + ' |',
            '| --- |' + ' --- |' * len(by_cfg)]
        for c in classes:
            cells = []
            for rows in by_cfg.values():
                vals = [r['dice_per_class'][c] for r in rows
                        if r['dice_per_class'].get(c) is not None]
                cells.append(f'{statistics.mean(vals):.2f}' if vals else '-')
            lines.append(f'| {c} | ' + ' | '.join(cells) + ' |')
    return '\n'.join(lines) + '\n'


def main():
    args = parse_args()
    logger = MMLogger.get_instance('seed_sweep', log_level='INFO')
    for config in args.configs:
        if not osp.isfile(config):
            raise FileNotFoundError(f'config not found: {config}')
    work_dir = osp.abspath(args.work_dir)
    os.makedirs(work_dir, exist_ok=True)
    cells = [(c, s) for c in args.configs for s in args.seeds]
    records = []
    for i, (config, seed) in enumerate(cells, 1):
        t0 = time.time()
        record, state = run_cell(config, seed, args.ratio, work_dir, args)
        head = f'[{i}/{len(cells)}] {osp.basename(config)} seed {seed}'
        if state == 'busy':
            logger.info(f'{head}: being run by another sweep, skipped')
            continue
        if state == 'missing':
            logger.info(f'{head}: not run yet')
            continue
        records.append(record)
        logger.info(
            f'{head}: mDice {record["mDice"]:.2f}'
            + (' (finished earlier)' if state == 'cached' else
               f' ({time.time() - t0:.0f} s)'))
    if not records:
        logger.info('no finished cells yet')
        return
    with open(osp.join(work_dir, 'results.json'), 'w') as f:
        json.dump(records, f, indent=2)
    table = summarise(records)
    with open(osp.join(work_dir, 'results.md'), 'w') as f:
        f.write(table)
    logger.info('\n' + table)


if __name__ == '__main__':
    main()
