"""Shared argparse options of ``tools/dataset_converters/*.py``."""
from __future__ import annotations

import argparse
import logging
from typing import Dict, Optional, Sequence

from mmengine.logging import MMLogger, print_log

from ..splits import DEFAULT_LABEL_RATIOS, DEFAULT_SPLIT_SEEDS


def setup_logger(name: str, log_file: Optional[str] = None) -> MMLogger:
    """Create the current MMLogger of a converter CLI.

    Args:
        name (str): Logger name.
        log_file (str, optional): Also log to this file.

    Returns:
        MMLogger: The logger (also the current instance for ``print_log``).
    """
    if MMLogger.check_instance_created(name):  # e.g. main() called twice
        return MMLogger.get_instance(name)
    return MMLogger.get_instance(
        name, logger_name=name, log_file=log_file, log_level='INFO')


def add_split_arguments(parser: argparse.ArgumentParser) -> None:
    """Add ``--seeds``, ``--ratios``, ``--val-fraction``, ``--test-fraction``.

    Args:
        parser (argparse.ArgumentParser): Parser to extend.
    """
    parser.add_argument(
        '--seeds',
        type=int,
        nargs='+',
        default=list(DEFAULT_SPLIT_SEEDS),
        help='split seeds (default: %(default)s)')
    parser.add_argument(
        '--ratios',
        type=float,
        nargs='+',
        default=list(DEFAULT_LABEL_RATIOS),
        help='labelled ratios in (0, 1] (default: %(default)s)')
    parser.add_argument(
        '--val-fraction',
        type=float,
        default=0.1,
        help='fraction of cases for validation (default: %(default)s)')
    parser.add_argument(
        '--test-fraction',
        type=float,
        default=0.2,
        help='fraction of cases for testing (default: %(default)s)')


def add_common_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the options every converter CLI shares.

    Args:
        parser (argparse.ArgumentParser): Parser to extend.
    """
    parser.add_argument('src_root', help='root folder of the raw dataset')
    parser.add_argument('out_dir', help='output folder (must not exist)')
    parser.add_argument(
        '--classes',
        help='comma-separated class names, background first')
    parser.add_argument(
        '--slice-axis',
        type=int,
        choices=(0, 1, 2),
        help='slice axis when dataset.json has none (default: the axis of '
        'largest voxel spacing)')
    parser.add_argument(
        '--cases', nargs='+', help='convert only these case ids')
    parser.add_argument(
        '--allow-unlabelled',
        action='store_true',
        help='convert cases without a mask as unlabelled')
    parser.add_argument('--name', help='dataset name for meta.json')
    parser.add_argument(
        '--overwrite',
        action='store_true',
        help='replace an existing converted output folder')
    parser.add_argument(
        '--no-splits',
        action='store_true',
        help='do not write case-level splits')
    add_split_arguments(parser)
    parser.add_argument('--log-file', help='also log to this file')


def common_kwargs(args: argparse.Namespace) -> Dict:
    """Turn parsed common options into :func:`convert_dataset` kwargs.

    Args:
        args (argparse.Namespace): Parsed arguments.

    Returns:
        dict: Keyword arguments for :func:`convert_dataset`.
    """
    return dict(
        src_root=args.src_root,
        out_dir=args.out_dir,
        classes=args.classes,
        slice_axis=args.slice_axis,
        overwrite=args.overwrite,
        cases=args.cases,
        allow_unlabelled=args.allow_unlabelled,
        name=args.name,
        splits=not args.no_splits,
        split_seeds=args.seeds,
        split_ratios=args.ratios,
        val_fraction=args.val_fraction,
        test_fraction=args.test_fraction)


def parse_args(description: str,
               argv: Optional[Sequence[str]] = None,
               extra=None) -> argparse.Namespace:
    """Build a converter parser with the common options and parse.

    Args:
        description (str): Parser description.
        argv (Sequence[str], optional): Arguments; defaults to sys.argv.
        extra (callable, optional): Adds layout-specific options.

    Returns:
        argparse.Namespace: Parsed arguments.
    """
    parser = argparse.ArgumentParser(description=description)
    add_common_arguments(parser)
    if extra is not None:
        extra(parser)
    return parser.parse_args(argv)


def run_converter(layout: str, args: argparse.Namespace, **extra) -> int:
    """Convert with the parsed options and report failures as exit code 1.

    Args:
        layout (str): One of :data:`LAYOUTS`.
        args (argparse.Namespace): Options from :func:`parse_args`.
        **extra: Layout-specific :func:`convert_dataset` keyword arguments.

    Returns:
        int: Process exit code (0 on success).
    """
    from .convert import convert_dataset
    setup_logger(f'cps4_convert_{layout}', args.log_file)
    try:
        convert_dataset(layout=layout, **common_kwargs(args), **extra)
    except (ValueError, OSError) as exc:
        print_log(f'conversion failed: {exc}', logger='current',
                  level=logging.ERROR)
        return 1
    return 0
