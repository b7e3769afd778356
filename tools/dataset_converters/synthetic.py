# Copyright (c) CPS4 contributors. All rights reserved.
"""Generate the embedded synthetic spine dataset (nnU-Net raw layout).

Example:
    python tools/dataset_converters/synthetic.py data/synthetic_spine \
        --num-cases 40 --seed 0 --size 192 192
"""
import argparse

from mmengine.logging import MMLogger, print_log

from cps4.datasets.synthetic import write_synthetic_dataset


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Generate procedural sagittal spine MR volumes with '
        'MRSpineSeg labels in the nnU-Net raw layout.')
    parser.add_argument('out_dir', help='output folder')
    parser.add_argument(
        '--num-cases', type=int, default=40, help='number of cases')
    parser.add_argument('--seed', type=int, default=0, help='base seed')
    parser.add_argument(
        '--size',
        type=int,
        nargs=2,
        default=[192, 192],
        metavar=('H', 'W'),
        help='in-plane size: rows (superior-inferior) and columns '
        '(anterior-posterior)')
    parser.add_argument(
        '--overwrite',
        action='store_true',
        help='regenerate even if a complete dataset with the same '
        'parameters already exists')
    parser.add_argument(
        '--workers',
        type=int,
        default=1,
        help='processes drawing cases (same files for any number)')
    parser.add_argument(
        '--no-progress', action='store_true', help='hide the progress bar')
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    logger = MMLogger.get_instance('cps4', log_level='INFO')
    out_dir = write_synthetic_dataset(
        args.out_dir,
        num_cases=args.num_cases,
        seed=args.seed,
        image_size=tuple(args.size),
        overwrite=args.overwrite,
        progress=not args.no_progress,
        workers=args.workers)
    print_log(f'Synthetic spine dataset ready: {out_dir}', logger=logger)


if __name__ == '__main__':
    main()
