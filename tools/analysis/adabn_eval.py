"""Volume Dice of a trained model before and after AdaBN: its BatchNorm
statistics re-estimated on the images of another subset of its split.

A model trained on one or two labelled cases has BatchNorm statistics of
those cases only. This tool measures, without training, what replacing
them by the statistics of the split's unlabelled slices (their images
only; no label is read) does to the volume Dice on the val cases, the
same metric as ``tools/test.py``. It answers on val, in about a minute,
whether AdaBN of the stage-1 VLM (``CPS4SemiSegmentor(vlm_adabn_iters=N)``
in stage 2) is worth a stage-2 run.

Example (the stage-1 VLM of one benchmark split)::

    python tools/analysis/adabn_eval.py W/stage1/1case/seed0/config.py \\
        W/stage1/1case/seed0/iter_1000.pth --stats-subset unlabelled \\
        --subset val --out-json W/stage1/1case/seed0/adabn_val.json
"""
import argparse
import copy
import os
import time

import torch
from mmengine.config import DictAction
from mmengine.logging import MMLogger
from prettytable import PrettyTable

from cps4.apis import (adapt_batchnorm, build_test_dataset,
                       evaluate_dataset, init_model)
from cps4.evaluation.functional import class_dice
from cps4.utils.atomic_file import atomic_file
from cps4.utils.fileio import write_json_atomic


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description='Volume Dice before and after re-estimating the '
        'BatchNorm statistics on another subset (AdaBN)')
    parser.add_argument('config')
    parser.add_argument('checkpoint')
    parser.add_argument('--stats-subset', default='unlabelled',
                        help='split subset whose images give the statistics '
                        '(default: unlabelled; its labels are not read)')
    parser.add_argument('--subset', default='val',
                        help='split subset to evaluate (default: val)')
    parser.add_argument('--batch-size', type=int, default=8)
    parser.add_argument('--device', default='cpu')
    parser.add_argument('--out-json', help='write the results here')
    parser.add_argument('--no-progress', action='store_true',
                        help='no progress bars')
    parser.add_argument('--save-checkpoint', metavar='PATH',
                        help='also save the adapted model (weights and '
                        'metadata of CHECKPOINT, the new statistics) for '
                        'tools/test.py')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction)
    return parser.parse_args(argv)


#: The metric of the scores: volume Dice, as tools/test.py (no HD95).
METRIC = dict(type='VolumeDiceMetric', hd95=False)


def save_adapted(model, checkpoint: str, path: str) -> None:
    """Save ``model``'s state with the metadata of ``checkpoint``
    (written next to ``path`` and renamed into place)."""
    meta = torch.load(checkpoint, map_location='cpu',
                      weights_only=False).get('meta', {})
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with atomic_file(path) as tmp:
        torch.save(dict(meta=meta, state_dict=model.state_dict()), tmp)


def image_dataset(cfg, subset: str):
    """The test dataset of ``cfg`` on ``subset`` without its labels."""
    cfg = copy.deepcopy(cfg)  # Config.copy is shallow: model.cfg stays
    dataset_cfg = cfg.test_dataloader.dataset
    dataset_cfg.pipeline = [t for t in dataset_cfg.pipeline
                            if t['type'] != 'LoadAnnotations']
    return build_test_dataset(cfg, subset)


def main(argv=None):
    args = parse_args(argv)
    logger = MMLogger.get_instance('adabn_eval', log_level='INFO')
    model = init_model(args.config, args.checkpoint, args.device,
                       args.cfg_options)
    dataset = build_test_dataset(model.cfg, args.subset)
    stats = image_dataset(model.cfg, args.stats_subset)
    classes = list(dataset.metainfo['classes'])[1:]
    rows = []
    start = time.time()
    progress = not args.no_progress
    before = evaluate_dataset(model, dataset, METRIC, args.batch_size,
                              progress)
    rows.append(dict(statistics='trained', mDice=before['mDice'],
                     dice_per_class=class_dice(before)))
    logger.info(f'adapting the BatchNorm statistics on {len(stats)} '
                f'{args.stats_subset} slices')
    n = adapt_batchnorm(model, stats, args.batch_size, progress)
    after = evaluate_dataset(model, dataset, METRIC, args.batch_size,
                             progress)
    rows.append(dict(statistics=f'AdaBN on {args.stats_subset}',
                     mDice=after['mDice'], dice_per_class=class_dice(after)))
    table = PrettyTable(['BatchNorm statistics', 'mDice'] + classes)
    for r in rows:
        table.add_row([r['statistics'], f'{r["mDice"]:.2f}'] + [
            '-' if r['dice_per_class'].get(c) is None
            else f'{r["dice_per_class"][c]:.2f}' for c in classes])
    delta = after['mDice'] - before['mDice']
    logger.info(f'volume Dice on the {args.subset} cases ({len(dataset)} '
                f'slices), {n} BatchNorm layers adapted:\n{table}\n'
                f'AdaBN changes mDice by {delta:+.2f} points '
                f'({time.time() - start:.0f} s)')
    if args.save_checkpoint:
        save_adapted(model, args.checkpoint, args.save_checkpoint)
        logger.info(f'adapted model written to {args.save_checkpoint}')
    if args.out_json:
        write_json_atomic(args.out_json, dict(
            config=args.config, checkpoint=args.checkpoint,
            stats_subset=args.stats_subset, subset=args.subset,
            layers_adapted=n, results=rows, delta=round(delta, 2)))
        logger.info(f'results written to {args.out_json}')


if __name__ == '__main__':
    main()
