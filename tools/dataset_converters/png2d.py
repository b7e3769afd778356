"""Convert a 2D PNG dataset (mmseg img_dir/ann_dir or images/labels).

Each image is one case of one slice. Class names come from ``--classes`` or
a ``dataset.json`` in the dataset root.

Example::

    python tools/dataset_converters/png2d.py ../shared/data/lumbar2d \
        data/lumbar2d --classes background,disc,vertebra
"""
import sys

from mmengine.logging import print_log

from cps4.datasets.converters import convert_dataset
from cps4.datasets.converters.cli import (common_kwargs, parse_args,
                                          setup_logger)


def main(argv=None):
    """Parse arguments and convert; return the process exit code."""
    args = parse_args(
        'Convert 2D PNG images and label maps into the slice format '
        '(meta.json, case splits).', argv)
    setup_logger('cps4_convert_png2d', args.log_file)
    try:
        convert_dataset(layout='png2d', **common_kwargs(args))
    except (ValueError, OSError) as exc:
        print_log(f'conversion failed: {exc}', logger='current', level=40)
        return 1
    return 0


if __name__ == '__main__':
    sys.exit(main())
