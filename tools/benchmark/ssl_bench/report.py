"""The benchmark's results: ``results.json``, the markdown tables of
``results.md`` and the Dice-vs-ratio plot."""
import json
import os.path as osp
import statistics
from typing import List, Sequence, Tuple

from mmengine.logging import print_log

from cps4.datasets.splits import format_pct
from cps4.utils.atomic_file import atomic_file, save_figure
from cps4.utils.fileio import write_json_atomic
from .methods import Cell


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


def write_results(work_dir: str, records: List[dict], methods: Sequence[str],
                  ratios: Sequence[float]) -> None:
    """``results.json``, ``results.md`` and ``dice_vs_ratio.png`` of the
    records in ``work_dir``; the main tables are also logged."""
    write_json_atomic(osp.join(work_dir, 'results.json'), records)
    table = results_table(records, methods, ratios)
    shown = (
        '\n## Val mDice (val cases of each split; the network each cell '
        'is tested with)\n\n'
        + results_table(records, methods, ratios, key='val_dice'))
    diff = difference_table(records, methods, ratios)
    if diff:
        shown += ('\n## Difference to sup, paired by seed (test; val '
                  'in brackets)\n\n' + diff)
    pl = pseudo_label_table(records)
    if pl:
        shown += '\n## Pseudo labels (last training iterations)\n\n' + pl
    per_class = ('\n## Dice per class (mean over seeds)\n\n'
                 + per_class_table(records, methods, ratios))
    with atomic_file(osp.join(work_dir, 'results.md')) as tmp:
        with open(tmp, 'w') as f:
            f.write(table + shown + per_class)
    if records:
        plot_dice_vs_ratio(records, methods,
                           osp.join(work_dir, 'dice_vs_ratio.png'))
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
