"""Convert a SPIDER dataset (images/*.mha, masks/*.mha) into 2D PNG slices.

SPIDER label values are mapped to the MRSpineSeg classes assuming vertebra 1
is L5 (see ``cps4.datasets.converters.layouts.spider_layout``);
``--label-map`` overrides entries of that mapping.

Example::

    python tools/dataset_converters/spider.py /data/SPIDER data/spider_t2 \
        --sequence t2
"""
import sys

from cps4.datasets.converters import SPIDER_SEQUENCES

# the options every converter shares, from this folder
from convert_cli import converter_parser, run_conversion

LOGGER_NAME = 'cps4_convert_spider'


def parse_args(argv=None):
    """Parse command line arguments."""
    parser = converter_parser(
        'Convert a SPIDER dataset into 2D PNG slices, meta.json '
        'and case splits.')
    parser.add_argument(
        '--sequence',
        default='t2',
        choices=SPIDER_SEQUENCES,
        help='MR sequence to convert (default: %(default)s)')
    parser.add_argument(
        '--label-map',
        help='JSON file {source_value: class_name} merged over the default '
        'SPIDER -> MRSpineSeg mapping')
    return parser.parse_args(argv)


def main(argv=None):
    """Parse arguments and convert; return the process exit code."""
    args = parse_args(argv)
    return run_conversion(
        args, 'spider', LOGGER_NAME,
        label_map=args.label_map,
        sequence=args.sequence)


if __name__ == '__main__':
    sys.exit(main())
