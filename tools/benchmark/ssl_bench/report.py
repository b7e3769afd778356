"""The benchmark's results: ``results.json``, the markdown tables of
``results.md`` and the Dice-vs-labelled-cases plot."""
import json
import os.path as osp
import statistics
from typing import Dict, List, Optional, Sequence, Tuple

from mmengine.logging import print_log

from cps4.datasets.splits import format_pct
from cps4.utils.atomic_file import save_figure
from cps4.utils.fileio import write_json_atomic, write_text_atomic
from .environment import environment_table
from .methods import Cell, LabelAmount

#: Which checkpoint each row of ``results.md`` tests.
CHECKPOINT_NOTE = (
    'Rows METHOD test the last checkpoint of each cell; rows METHOD+best '
    'its best-on-val checkpoint (val mDice of the split\'s val cases at '
    'every checkpoint, the network the cell is tested with); +order and '
    '+adabn rows post-process the last checkpoint.\n\n')

#: The method whose full-supervision cells are the reference of the
#: ratio-to-full figures.
REFERENCE = 'sup'


def finished_records(cells: Sequence[Cell],
                     work_dir: str) -> Tuple[List[dict], List[str]]:
    """The records of the finished ``cells`` and the names of the others."""
    records, missing = [], []
    for cell in cells:
        path = cell.result_path(work_dir)
        if osp.isfile(path):
            with open(path) as f:
                records.append(json.load(f))
        else:
            missing.append(cell.name)
    return records, missing


def labels_of(record: dict) -> str:
    """The labelled-amount tag of a record (``'2cases'``, ``'5pct'``);
    records written before amounts in cases carry only ``label_ratio``."""
    if record.get('labels'):
        return record['labels']
    return f'{format_pct(record["label_ratio"])}pct'


def _values(records: Sequence[dict], method: str, tag: str,
            key: str = 'dice_mean') -> List[float]:
    return [r[key] for r in records
            if r['method'] == method and labels_of(r) == tag
            and r.get(key) is not None]


def full_reference(records: Sequence[dict],
                   key: str = 'dice_mean') -> Optional[float]:
    """Mean over seeds of the full-supervision cells (``sup`` at 100%), or
    None when they were not run."""
    vals = _values(records, REFERENCE, LabelAmount(ratio=1.0).tag, key)
    return statistics.mean(vals) if vals else None


def write_results(work_dir: str, records: List[dict], methods: Sequence[str],
                  amounts: Sequence[LabelAmount],
                  stage1: Sequence[dict] = ()) -> None:
    """``results.json``, ``results.md`` and ``dice_vs_cases.png`` of the
    records in ``work_dir``; the main tables are also logged.

    Args:
        stage1 (Sequence[dict]): Rows of :func:`stage1_table`, the stage-1
            models of the splits (a section of ``results.md`` when given).
    """
    write_json_atomic(osp.join(work_dir, 'results.json'), records)
    table = results_table(records, methods, amounts)
    shown = (
        '\n## Val mDice (val cases of each split; the network each cell '
        'is tested with)\n\n'
        + results_table(records, methods, amounts, key='val_dice'))
    diff = difference_table(records, methods, amounts)
    if diff:
        shown += ('\n## Difference to sup, paired by seed (test; val '
                  'in brackets)\n\n' + diff)
    pl = pseudo_label_table(records)
    if pl:
        shown += '\n## Pseudo labels (last training iterations)\n\n' + pl
    per_class = ('\n## Dice per class (mean over seeds)\n\n'
                 + per_class_table(records, methods, amounts))
    if stage1:
        per_class += ('\n## Stage 1: the VLM of each split (mDice; AdaBN: '
                      'val after re-estimating its BatchNorm statistics on '
                      'the unlabelled slices, tools/analysis/adabn_eval.py)'
                      '\n\n' + stage1_table(stage1))
    env = ('\n## Environment (of the process that finished each cell)'
           '\n\n' + environment_table(records))
    write_text_atomic(osp.join(work_dir, 'results.md'),
                      CHECKPOINT_NOTE + table + shown + per_class + env)
    if records:
        plot_dice_vs_cases(records, methods,
                           osp.join(work_dir, 'dice_vs_cases.png'))
    print_log('\n' + table + shown, logger='current')


def stage1_table(rows: Sequence[dict]) -> str:
    """Markdown table of stage-1 models, one row each.

    Args:
        rows (Sequence[dict]): ``labels`` (amount tag), ``seed``, ``model``
            (e.g. ``'round 1'``), ``record`` (the stage-1 ``result.json``)
            and ``adabn`` (the ``adabn_eval.py`` JSON, or None).
    """
    lines = ['| labels | seed | model | val | val, AdaBN | test | '
             'train s |', '| --- | --- | --- | --- | --- | --- | --- |']
    for row in rows:
        rec, adabn = row['record'], row.get('adabn')
        val = (rec.get('val') or {}).get('mDice')
        after = adabn['results'][-1]['mDice'] if adabn else None
        lines.append(
            f'| {row["labels"]} | {row["seed"]} | {row["model"]} | '
            + ' | '.join('-' if v is None else f'{v:.2f}'
                         for v in (val, after, rec.get('dice_mean')))
            + f' | {rec.get("train_s", "-")} |')
    return '\n'.join(lines) + '\n'


def _mean_std(vals: Sequence[float]) -> str:
    if not vals:
        return '-'
    if len(vals) == 1:
        return f'{vals[0]:.2f} (1 seed)'
    return f'{statistics.mean(vals):.2f} +- {statistics.stdev(vals):.2f}'


def _head(amount: LabelAmount, records: Sequence[dict]) -> str:
    """``'2 cases'``, or ``'5% (1 case)'`` with the cases a ratio gave."""
    if amount.cases is not None:
        return amount.text
    n = sorted({r['n_labelled_cases'] for r in records
                if labels_of(r) == amount.tag})
    word = 'case' if n == [1] else 'cases'
    return (f'{amount.text} (' + ('/'.join(map(str, n)) if n else '?')
            + f' {word})')


def results_table(records: Sequence[dict], methods: Sequence[str],
                  amounts: Sequence[LabelAmount],
                  key: str = 'dice_mean') -> str:
    """Markdown table: methods x labelled amounts, Dice mean +- sample std
    over seeds.

    When the full-supervision cells (``sup`` at 100%) are among the
    records, each cell also gives, in brackets, its mean over the mean of
    full supervision (``[0.93 of full]``), the figure label-efficiency
    results are read by.

    Args:
        key (str): The record's value to tabulate: ``dice_mean`` (test) or
            ``val_dice``; records without it are left out.
    """
    full = full_reference(records, key)
    lines = ['| method | ' + ' | '.join(_head(a, records) for a in amounts)
             + ' |', '| --- |' + ' --- |' * len(amounts)]
    for m in methods:
        cells = []
        for amount in amounts:
            vals = _values(records, m, amount.tag, key)
            text = _mean_std(vals)
            if vals and full:
                text += f' [{statistics.mean(vals) / full:.2f} of full]'
            cells.append(text)
        lines.append(f'| {m} | ' + ' | '.join(cells) + ' |')
    return '\n'.join(lines) + '\n'


def difference_table(records: Sequence[dict], methods: Sequence[str],
                     amounts: Sequence[LabelAmount],
                     reference: str = REFERENCE) -> str:
    """Markdown table: each method minus ``reference``, paired by seed.

    A cell reads ``+3.10 (+2.50), 2/3 seeds``: the mean over the seeds both
    ran of the test mDice difference, the same for val mDice in brackets,
    and on how many of those seeds the method's test mDice is higher. Empty
    when ``reference`` was not run.
    """
    by_key = {(r['method'], labels_of(r), r['seed']): r for r in records}
    others = [m for m in methods if m != reference]
    if reference not in methods or not others:
        return ''
    lines = ['| method | ' + ' | '.join(a.text for a in amounts) + ' |',
             '| --- |' + ' --- |' * len(amounts)]
    for m in others:
        cells = []
        for amount in amounts:
            pairs = [(r, by_key[(reference, amount.tag, r['seed'])])
                     for r in records
                     if r['method'] == m and labels_of(r) == amount.tag
                     and (reference, amount.tag, r['seed']) in by_key]
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
                    amounts: Sequence[LabelAmount]) -> str:
    """Markdown table: mean Dice per class (rows) for each method and
    labelled amount (columns), over the seeds run; classes absent from
    every test volume of a seed are left out of that seed's mean."""
    cols = [(m, a) for a in amounts for m in methods
            if any(x['method'] == m and labels_of(x) == a.tag
                   for x in records)]
    classes = []
    for x in records:
        classes += [c for c in x['dice_per_class'] if c not in classes]
    lines = ['| class | ' + ' | '.join(f'{m} {a.text}' for m, a in cols)
             + ' |', '| --- |' + ' --- |' * len(cols)]
    for c in classes:
        cells = []
        for m, a in cols:
            vals = [x['dice_per_class'].get(c) for x in records
                    if x['method'] == m and labels_of(x) == a.tag]
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
    lines = ['| method | labels | seed | ' + ' | '.join(
        k[len('pl_'):] for k in keys) + ' |',
             '| --- | --- | --- |' + ' --- |' * len(keys)]
    for x in rows:
        pl = x['pseudo_labels']
        cells = [f'{100 * pl[k]:.1f}' if k in pl else '-' for k in keys]
        lines.append(f'| {x["method"]} | {labels_of(x)} | '
                     f'{x["seed"]} | ' + ' | '.join(cells) + ' |')
    return '\n'.join(lines) + '\n'


def plot_dice_vs_cases(records: Sequence[dict], methods: Sequence[str],
                       path: str) -> None:
    """Dice (mean +- std over seeds) against the number of labelled cases
    (mean over seeds of each amount), per method, with full supervision as
    a dashed line; test on the left, val (the cases choices are made on) on
    the right; written atomically."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 4), sharey=True)
    for ax, key, title in zip(axes, ('dice_mean', 'val_dice'),
                              ('test cases', 'val cases (used for choices)')):
        shown = [r for r in records if r.get(key) is not None]
        for m in methods:
            by_amount: Dict[str, List[dict]] = {}
            for r in shown:
                if r['method'] == m:
                    by_amount.setdefault(labels_of(r), []).append(r)
            if not by_amount:
                continue
            points = sorted(
                (statistics.mean(r['n_labelled_cases'] for r in rs),
                 [r[key] for r in rs]) for rs in by_amount.values())
            xs = [x for x, _ in points]
            means = [statistics.mean(v) for _, v in points]
            stds = [statistics.stdev(v) if len(v) > 1 else 0
                    for _, v in points]
            ax.errorbar(xs, means, yerr=stds, marker='o', capsize=3,
                        label=m)
        full = full_reference(shown, key)
        if full is not None:
            ax.axhline(full, color='grey', linestyle='--', linewidth=1,
                       label='full supervision')
        ax.set_xscale('log', base=2)
        ax.set_xlabel('labelled cases')
        ax.set_title(title)
        ax.grid(alpha=0.3)
    axes[0].set_ylabel('volume Dice (%)')
    axes[0].legend(fontsize='small')
    fig.tight_layout()
    save_figure(fig, path)
