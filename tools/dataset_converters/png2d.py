"""Convert a 2D PNG dataset (mmseg img_dir/ann_dir or images/labels).

Each image is one case of one slice. Class names come from ``--classes`` or
a ``dataset.json`` in the dataset root.

Example::

    python tools/dataset_converters/png2d.py ../shared/data/lumbar2d \
        data/lumbar2d --classes background,disc,vertebra
"""
import sys

from cps4.datasets.converters.cli import parse_args, run_converter


def main(argv=None):
    """Parse arguments and convert; return the process exit code."""
    args = parse_args(
        'Convert 2D PNG images and label maps into the slice format '
        '(meta.json, case splits).', argv)
    return run_converter('png2d', args)


if __name__ == '__main__':
    sys.exit(main())
