"""Convert a 2D PNG dataset (mmseg img_dir/ann_dir or images/labels).

Each image is one case of one slice. Class names come from ``--classes`` or
a ``dataset.json`` in the dataset root.

Example::

    python tools/dataset_converters/png2d.py ../shared/data/lumbar2d \
        data/lumbar2d --classes background,disc,vertebra
"""
import sys

# the options every converter shares, from this folder
from convert_cli import converter_parser, run_conversion

LOGGER_NAME = 'cps4_convert_png2d'


def parse_args(argv=None):
    """Parse command line arguments."""
    parser = converter_parser(
        'Convert 2D PNG images and label maps into the slice '
        'format (meta.json, case splits).')
    return parser.parse_args(argv)


def main(argv=None):
    """Parse arguments and convert; return the process exit code."""
    args = parse_args(argv)
    return run_conversion(
        args, 'png2d', LOGGER_NAME)


if __name__ == '__main__':
    sys.exit(main())
