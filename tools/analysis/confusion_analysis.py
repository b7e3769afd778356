"""Where a segmentation model goes wrong: missed, invented or misnamed units.

Runs a trained model over one subset of a split and splits its foreground
errors into three kinds that call for different fixes:

* **missed**: a spine-unit pixel predicted as background (detection);
* **wrong unit**: predicted as another unit (naming, e.g. L3 called L4);
* **invented**: a background pixel predicted as a unit.

It also prints the histogram of the naming offset (predicted index minus
true index along the class order) and, for models whose samples carry
``seg_logits`` (such as :class:`CPS4VLM`), the volume mDice of alternative
decoding rules of the unified map, so that a threshold problem can be told
apart from a representation problem. Writes the confusion matrix as a PNG
with ``--out-png``.

Example::

    python tools/analysis/confusion_analysis.py CONFIG CHECKPOINT \\
        --subset val --out-png work_dirs/confusion_val.png
"""
import argparse
import os.path as osp

import numpy as np
import torch
from mmengine.config import DictAction
from mmengine.logging import MMLogger

from cps4.apis import build_test_dataset, inference_dataset, init_model
from cps4.evaluation.functional import aggregate_dice, dice_per_class
from cps4.utils import save_figure


def parse_args():
    parser = argparse.ArgumentParser(
        description='Split a model\'s errors into missed / wrong unit / '
        'invented pixels')
    parser.add_argument('config')
    parser.add_argument('checkpoint')
    parser.add_argument('--subset', default='val',
                        help='split subset to analyse (default: val)')
    parser.add_argument('--batch-size', type=int, default=8)
    parser.add_argument('--device', default='cpu')
    parser.add_argument(
        '--thresholds', nargs='+', type=float, default=[0.5, 0.3, 0.1],
        help='unified-map thresholds to compare (models with seg_logits)')
    parser.add_argument('--out-png', default=None,
                        help='write the row-normalised confusion matrix')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction)
    return parser.parse_args()


def error_summary(conf: np.ndarray) -> dict:
    """Fractions of foreground pixels correct / misnamed / missed.

    Args:
        conf (np.ndarray): Confusion matrix (K, K), rows ground truth,
            columns prediction, class 0 background.

    Returns:
        dict: ``correct``, ``wrong_unit`` and ``missed`` as fractions of
        the foreground pixels, ``invented`` (background pixels predicted as
        a unit) relative to the same count, and ``fg_pixels``.
    """
    fg = conf[1:, :].sum()
    if fg == 0:
        raise ValueError('no foreground pixels in the analysed subset')
    correct = np.trace(conf[1:, 1:])
    return dict(
        fg_pixels=int(fg),
        correct=correct / fg,
        wrong_unit=(conf[1:, 1:].sum() - correct) / fg,
        missed=conf[1:, 0].sum() / fg,
        invented=conf[0, 1:].sum() / fg)


def offset_histogram(conf: np.ndarray) -> dict:
    """Share of unit pixels per naming offset (pred index - true index)."""
    hist = {}
    k = conf.shape[0]
    for t in range(1, k):
        for p in range(1, k):
            hist[p - t] = hist.get(p - t, 0) + conf[t, p]
    total = sum(hist.values())
    return {o: v / total for o, v in sorted(hist.items())} if total else {}


def volume_mdice(cases: dict, num_classes: int) -> float:
    """Mean over classes of the mean over cases of volume Dice (percent)."""
    rows = []
    for slices in cases.values():
        order = sorted(slices)
        pred = np.stack([slices[i][0] for i in order])
        gt = np.stack([slices[i][1] for i in order])
        rows.append(dice_per_class(pred, gt, num_classes))
    return aggregate_dice(np.stack(rows))[1] * 100


def main():
    args = parse_args()
    logger = MMLogger.get_instance('confusion_analysis', log_level='INFO')
    model = init_model(args.config, args.checkpoint, args.device,
                       args.cfg_options)
    dataset = build_test_dataset(model.cfg, args.subset)
    classes = dataset.metainfo['classes']
    num_classes = len(classes)

    conf = np.zeros((num_classes, num_classes), dtype=np.int64)
    rules = {}

    def add(rule, meta, pred, gt):
        rules.setdefault(rule, {}).setdefault(meta['case_id'], {})[
            meta['slice_idx']] = (pred, gt)

    for _, samples in inference_dataset(model, dataset,
                                        batch_size=args.batch_size):
        for out in samples:
            gt = out.gt_sem_seg.data.squeeze(0).cpu().numpy()
            pred = out.pred_sem_seg.data.squeeze(0).cpu().numpy()
            valid = gt != 255
            np.add.at(conf, (gt[valid], pred[valid]), 1)
            add('model output', out.metainfo, pred, gt)
            if 'seg_logits' in out:
                logits = out.seg_logits.data.float().cpu()
                add('argmax_k S_k (no threshold)', out.metainfo,
                    logits.argmax(0).numpy(), gt)
                maps = logits[1:].sigmoid()
                best, idx = maps.max(0)
                for thr in args.thresholds:
                    add(f'argmax over units, B >= {thr}', out.metainfo,
                        torch.where(best >= thr, idx + 1, 0).numpy(), gt)

    summary = error_summary(conf)
    logger.info(
        f'{args.subset}: {len(dataset)} slices, {summary["fg_pixels"]} unit '
        f'pixels: correct {summary["correct"]:.3f}, wrong unit '
        f'{summary["wrong_unit"]:.3f}, missed {summary["missed"]:.3f}, '
        f'invented {summary["invented"]:.3f}')
    hist = offset_histogram(conf)
    logger.info('naming offset (pred - true) share of unit pixels: ' +
                ', '.join(f'{o:+d}: {v:.3f}' for o, v in hist.items()
                          if v >= 0.005))
    for rule, cases in rules.items():
        logger.info(f'volume mDice, {rule}: '
                    f'{volume_mdice(cases, num_classes):.2f}')
    if args.out_png:
        import matplotlib
        matplotlib.use('Agg')
        import matplotlib.pyplot as plt
        norm = conf / np.maximum(conf.sum(1, keepdims=True), 1)
        fig, ax = plt.subplots(figsize=(0.4 * num_classes + 2,
                                        0.4 * num_classes + 1.5))
        im = ax.imshow(norm, cmap='viridis', vmin=0, vmax=1)
        ax.set_xticks(range(num_classes), classes, rotation=90, fontsize=7)
        ax.set_yticks(range(num_classes), classes, fontsize=7)
        ax.set_xlabel('predicted')
        ax.set_ylabel('ground truth')
        ax.set_title(f'{osp.basename(args.config)} ({args.subset})',
                     fontsize=8)
        fig.colorbar(im, ax=ax, fraction=0.046)
        fig.tight_layout()
        save_figure(fig, args.out_png)
        logger.info(f'confusion matrix written to {args.out_png}')


if __name__ == '__main__':
    main()
