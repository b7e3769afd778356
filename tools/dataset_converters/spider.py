"""Convert a SPIDER dataset (images/*.mha, masks/*.mha) into 2D PNG slices.

SPIDER label values are mapped to the MRSpineSeg classes assuming vertebra 1
is L5 (see ``cps4.datasets.converters.layouts``); ``--label-map`` overrides
entries of that mapping.

Example::

    python tools/dataset_converters/spider.py /data/SPIDER data/spider_t2 \
        --sequence t2
"""
import sys

from cps4.datasets.converters import SPIDER_SEQUENCES
from cps4.datasets.converters.cli import parse_args, run_converter


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
    return run_converter(
        'spider', args, label_map=args.label_map, sequence=args.sequence)


if __name__ == '__main__':
    sys.exit(main())
