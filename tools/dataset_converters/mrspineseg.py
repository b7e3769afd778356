"""Convert a raw MRSpineSeg dataset (MR/, Mask/) into 2D PNG slices.

Example::

    python tools/dataset_converters/mrspineseg.py \
        /data/MRSpineSeg_Challenge/train data/mrspineseg
"""
import sys

# the options every converter shares, from this folder
from convert_cli import converter_parser, run_conversion

LOGGER_NAME = 'cps4_convert_mrspineseg'


def parse_args(argv=None):
    """Parse command line arguments."""
    parser = converter_parser(
        'Convert a MRSpineSeg dataset (MR/CaseN.nii.gz, '
        'Mask/mask_caseN.nii.gz) into 2D PNG slices, meta.json and case '
        'splits.')
    return parser.parse_args(argv)


def main(argv=None):
    """Parse arguments and convert; return the process exit code."""
    args = parse_args(argv)
    return run_conversion(
        args, 'mrspineseg', LOGGER_NAME)


if __name__ == '__main__':
    sys.exit(main())
