"""Convert a raw MRSpineSeg dataset (MR/, Mask/) into 2D PNG slices.

Example::

    python tools/dataset_converters/mrspineseg.py \
        /data/MRSpineSeg_Challenge/train data/mrspineseg
"""
import sys

from cps4.datasets.converters.cli import parse_args, run_converter


def main(argv=None):
    """Parse arguments and convert; return the process exit code."""
    args = parse_args(
        'Convert a MRSpineSeg dataset (MR/CaseN.nii.gz, '
        'Mask/mask_caseN.nii.gz) into 2D PNG slices, meta.json and case '
        'splits.', argv)
    return run_converter('mrspineseg', args)


if __name__ == '__main__':
    sys.exit(main())
