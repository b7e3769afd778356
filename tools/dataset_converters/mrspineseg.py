"""Convert a raw MRSpineSeg dataset (MR/, Mask/) into 2D PNG slices.

Example::

    python tools/dataset_converters/mrspineseg.py \
        /data/MRSpineSeg_Challenge/train data/mrspineseg
"""
import sys

from mmengine.logging import print_log

from cps4.datasets.converters import convert_dataset
from cps4.datasets.converters.cli import (common_kwargs, parse_args,
                                          setup_logger)


def main(argv=None):
    """Parse arguments and convert; return the process exit code."""
    args = parse_args(
        'Convert a MRSpineSeg dataset (MR/CaseN.nii.gz, '
        'Mask/mask_caseN.nii.gz) into 2D PNG slices, meta.json and case '
        'splits.', argv)
    setup_logger('cps4_convert_mrspineseg', args.log_file)
    try:
        convert_dataset(layout='mrspineseg', **common_kwargs(args))
    except (ValueError, OSError) as exc:
        print_log(f'conversion failed: {exc}', logger='current', level=40)
        return 1
    return 0


if __name__ == '__main__':
    sys.exit(main())
