"""Write case-level splits for an already converted dataset.

Example::

    python tools/dataset_converters/make_splits.py data/myosegmentum_vb \
        --seeds 0 1 2 --ratios 0.05 0.1 0.025 --labelled-cases 1 2 4
"""
import argparse
import sys

from mmengine.logging import MMLogger, print_log

from cps4.datasets.splits import write_splits

# the split options every converter shares, from this folder
from convert_cli import add_split_arguments

LOGGER_NAME = 'cps4_make_splits'


def parse_args(argv=None):
    """Parse command line arguments."""
    parser = argparse.ArgumentParser(
        description='Write OUT/splits/seed{seed}_{pct}pct.json (and '
        'seed{seed}_{n}cases.json) for a converted dataset folder.')
    parser.add_argument('out_dir', help='converted dataset (has meta.json)')
    add_split_arguments(parser)
    parser.add_argument(
        '--overwrite',
        action='store_true',
        help='replace existing split files that differ')
    return parser.parse_args(argv)


def main(argv=None):
    """Parse arguments and write the splits; return the exit code."""
    args = parse_args(argv)
    if not MMLogger.check_instance_created(LOGGER_NAME):
        MMLogger.get_instance(
            LOGGER_NAME, logger_name=LOGGER_NAME, log_level='INFO')
    try:
        paths = write_splits(args.out_dir, args.seeds, args.ratios,
                             args.val_fraction, args.test_fraction,
                             args.overwrite, args.labelled_cases)
    except (ValueError, OSError) as exc:
        print_log(f'making splits failed: {exc}', logger='current', level=40)
        return 1
    for path in paths:
        print_log(f'wrote {path}', logger='current')
    return 0


if __name__ == '__main__':
    sys.exit(main())
