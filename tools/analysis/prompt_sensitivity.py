"""Volume Dice of a trained stage-1 model under paraphrased prompts.

The paper names sensitivity to prompt design as its limitation; this tool
measures it. Each variant of a variant file (see
:mod:`cps4.models.prompts.prompt_variants`) changes the class prompts of the
trained model (style, templates, phrases, descriptions, synonyms) without
retraining; the model is then evaluated on one subset of the split with the
same volume Dice as ``tools/test.py``.

Example::

    python tools/analysis/prompt_sensitivity.py CONFIG CHECKPOINT \\
        configs/_base_/prompts/variants/vertebral_bodies_l1_l5.json \\
        --subset val --out-json work_dirs/prompt_sensitivity.json
"""
import argparse
import os.path as osp
import time

from mmengine.config import DictAction
from mmengine.logging import MMLogger
from prettytable import PrettyTable

from cps4.apis import build_test_dataset, evaluate_dataset, init_model
from cps4.models.prompts import load_prompt_variants, prompt_variant
from cps4.utils.fileio import write_json_atomic
from cps4.evaluation.functional import class_dice


def parse_args():
    parser = argparse.ArgumentParser(
        description='Evaluate a trained stage-1 model under prompt variants')
    parser.add_argument('config')
    parser.add_argument('checkpoint')
    parser.add_argument('variants', help='prompt variant file (.json)')
    parser.add_argument('--subset', default='val',
                        help='split subset to evaluate (default: val)')
    parser.add_argument('--batch-size', type=int, default=8)
    parser.add_argument('--device', default='cpu')
    parser.add_argument('--out-json', help='write the results here')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction)
    return parser.parse_args()


def main():
    args = parse_args()
    logger = MMLogger.get_instance('prompt_sensitivity', log_level='INFO')
    variants = load_prompt_variants(args.variants)
    model = init_model(args.config, args.checkpoint, args.device,
                       args.cfg_options)
    if not hasattr(model, 'prompt'):
        raise SystemExit(f'{args.config}: {type(model).__name__} has no class '
                         'prompts; pass a stage-1 (CPS4VLM) config')
    dataset = build_test_dataset(model.cfg, args.subset)
    classes = list(dataset.metainfo['classes'])[1:]
    rows = []
    for i, variant in enumerate(variants, 1):
        with prompt_variant(model.prompt, variant) as learner:
            example = learner.texts()[-1][0]  # a foreground class
            logger.info(f'[{i}/{len(variants)}] {variant["name"]}: e.g. '
                        f'{example!r}')
            start = time.time()
            metrics = evaluate_dataset(model, dataset,
                                       batch_size=args.batch_size)
        rows.append(dict(variant=variant['name'], example_prompt=example,
                         mDice=metrics['mDice'],
                         dice_per_class=class_dice(metrics),
                         seconds=round(time.time() - start, 1)))
    table = PrettyTable(['variant', 'mDice'] + classes)
    for r in rows:
        table.add_row([r['variant'], f'{r["mDice"]:.2f}'] + [
            '-' if r['dice_per_class'].get(c) is None
            else f'{r["dice_per_class"][c]:.2f}' for c in classes])
    spread = max(r['mDice'] for r in rows) - min(r['mDice'] for r in rows)
    logger.info(f'volume Dice on the {args.subset} cases '
                f'({len(dataset)} slices) per prompt variant:\n{table}\n'
                f'spread of mDice over variants: {spread:.2f} points')
    if args.out_json:
        write_json_atomic(args.out_json, dict(
            config=args.config, checkpoint=args.checkpoint,
            variants_file=osp.abspath(args.variants), subset=args.subset,
            results=rows, mdice_spread=round(spread, 2)))
        logger.info(f'results written to {args.out_json}')


if __name__ == '__main__':
    main()
