"""Convert an nnU-Net v1/v2 or MSD raw dataset into 2D PNG slices.

Example::

    python tools/dataset_converters/nnunet.py \
        ../shared/data/myosegmentum_vb data/myosegmentum_vb
"""
import sys

from cps4.datasets.converters.cli import parse_args, run_converter


def main(argv=None):
    """Parse arguments and convert; return the process exit code."""
    args = parse_args(
        'Convert an nnU-Net/MSD raw dataset (imagesTr, labelsTr, '
        'dataset.json) into 2D PNG slices, meta.json and case splits.', argv)
    return run_converter('nnunet', args)


if __name__ == '__main__':
    sys.exit(main())
