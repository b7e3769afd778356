"""Convert an nnU-Net v1/v2 or MSD raw dataset into 2D PNG slices.

Example::

    python tools/dataset_converters/nnunet.py \
        ../shared/data/myosegmentum_vb data/myosegmentum_vb
"""
import sys

# the options every converter shares, from this folder
from convert_cli import converter_parser, run_conversion

LOGGER_NAME = 'cps4_convert_nnunet'


def parse_args(argv=None):
    """Parse command line arguments."""
    parser = converter_parser(
        'Convert an nnU-Net/MSD raw dataset (imagesTr, '
        'labelsTr, dataset.json) into 2D PNG slices, meta.json and case '
        'splits.')
    return parser.parse_args(argv)


def main(argv=None):
    """Parse arguments and convert; return the process exit code."""
    args = parse_args(argv)
    return run_conversion(
        args, 'nnunet', LOGGER_NAME)


if __name__ == '__main__':
    sys.exit(main())
