"""Convert a 2D PNG dataset (mmseg img_dir/ann_dir or images/labels).

Each image is one case of one slice. Class names come from ``--classes`` or
a ``dataset.json`` in the dataset root.

Example::

    python tools/dataset_converters/png2d.py ../shared/data/lumbar2d \
        data/lumbar2d --classes background,disc,vertebra
"""
import argparse
import logging
import sys

from mmengine.logging import MMLogger, print_log

from cps4.datasets.converters import convert_dataset
from cps4.datasets.splits import DEFAULT_LABEL_RATIOS, DEFAULT_SPLIT_SEEDS

LOGGER_NAME = 'cps4_convert_png2d'


def parse_args(argv=None):
    """Parse command line arguments."""
    parser = argparse.ArgumentParser(
        description='Convert 2D PNG images and label maps into the slice '
        'format (meta.json, case splits).')
    parser.add_argument('src_root', help='root folder of the raw dataset')
    parser.add_argument('out_dir', help='output folder (must not exist)')
    parser.add_argument(
        '--classes', help='comma-separated class names, background first')
    parser.add_argument(
        '--slice-axis',
        type=int,
        choices=(0, 1, 2),
        help='slice axis when dataset.json has none (default: the axis of '
        'largest voxel spacing)')
    parser.add_argument(
        '--cases', nargs='+', help='convert only these case ids')
    parser.add_argument(
        '--allow-unlabelled',
        action='store_true',
        help='convert cases without a mask as unlabelled')
    parser.add_argument('--name', help='dataset name for meta.json')
    parser.add_argument(
        '--overwrite',
        action='store_true',
        help='replace an existing converted output folder')
    parser.add_argument(
        '--no-splits',
        action='store_true',
        help='do not write case-level splits')
    parser.add_argument(
        '--seeds',
        type=int,
        nargs='+',
        default=list(DEFAULT_SPLIT_SEEDS),
        help='split seeds (default: %(default)s)')
    parser.add_argument(
        '--ratios',
        type=float,
        nargs='+',
        default=list(DEFAULT_LABEL_RATIOS),
        help='labelled ratios in (0, 1] (default: %(default)s)')
    parser.add_argument(
        '--val-fraction',
        type=float,
        default=0.1,
        help='fraction of cases for validation (default: %(default)s)')
    parser.add_argument(
        '--test-fraction',
        type=float,
        default=0.2,
        help='fraction of cases for testing (default: %(default)s)')
    parser.add_argument('--log-file', help='also log to this file')
    return parser.parse_args(argv)


def main(argv=None):
    """Parse arguments and convert; return the process exit code."""
    args = parse_args(argv)
    if not MMLogger.check_instance_created(LOGGER_NAME):
        MMLogger.get_instance(
            LOGGER_NAME,
            logger_name=LOGGER_NAME,
            log_file=args.log_file,
            log_level='INFO')
    try:
        convert_dataset(
            args.src_root,
            args.out_dir,
            'png2d',
            classes=args.classes,
            slice_axis=args.slice_axis,
            overwrite=args.overwrite,
            cases=args.cases,
            allow_unlabelled=args.allow_unlabelled,
            name=args.name,
            splits=not args.no_splits,
            split_seeds=args.seeds,
            split_ratios=args.ratios,
            val_fraction=args.val_fraction,
            test_fraction=args.test_fraction)
    except (ValueError, OSError) as exc:
        print_log(
            f'conversion failed: {exc}', logger='current', level=logging.ERROR)
        return 1
    return 0


if __name__ == '__main__':
    sys.exit(main())
