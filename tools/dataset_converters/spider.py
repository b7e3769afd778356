"""Convert a SPIDER dataset (images/*.mha, masks/*.mha) into 2D PNG slices.

SPIDER label values are mapped to the MRSpineSeg classes assuming vertebra 1
is L5 (see ``cps4.datasets.converters.layouts``); ``--label-map`` overrides
entries of that mapping.

Example::

    python tools/dataset_converters/spider.py /data/SPIDER data/spider_t2 \
        --sequence t2
"""
import sys

from mmengine.logging import print_log

from cps4.datasets.converters import SPIDER_SEQUENCES, convert_dataset
from cps4.datasets.converters.cli import (common_kwargs, parse_args,
                                          setup_logger)


def add_spider_arguments(parser):
    """Add the SPIDER-specific options."""
    parser.add_argument(
        '--sequence',
        default='t2',
        choices=SPIDER_SEQUENCES,
        help='MR sequence to convert (default: %(default)s)')
    parser.add_argument(
        '--label-map',
        help='JSON file {source_value: class_name} merged over the default '
        'SPIDER -> MRSpineSeg mapping')


def main(argv=None):
    """Parse arguments and convert; return the process exit code."""
    args = parse_args(
        'Convert a SPIDER dataset into 2D PNG slices, meta.json and case '
        'splits.', argv, add_spider_arguments)
    setup_logger('cps4_convert_spider', args.log_file)
    try:
        convert_dataset(
            layout='spider',
            label_map=args.label_map,
            sequence=args.sequence,
            **common_kwargs(args))
    except (ValueError, OSError) as exc:
        print_log(f'conversion failed: {exc}', logger='current', level=40)
        return 1
    return 0


if __name__ == '__main__':
    sys.exit(main())
