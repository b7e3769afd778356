"""Options and entry point shared by the converter scripts of this folder.

The scripts (``nnunet.py``, ``mrspineseg.py``, ``spider.py``, ``png2d.py``,
``make_splits.py``) import this module from their own folder; the library
(:func:`cps4.datasets.converters.convert_dataset`,
:func:`cps4.datasets.splits.write_splits`) takes plain arguments.
"""
import argparse
import logging
from typing import Optional

from mmengine.logging import MMLogger, print_log

from cps4.datasets.converters import convert_dataset
from cps4.datasets.splits import DEFAULT_LABEL_RATIOS, DEFAULT_SPLIT_SEEDS


def add_split_arguments(parser: argparse.ArgumentParser) -> None:
    """Add ``--seeds``, ``--ratios``, ``--labelled-cases``,
    ``--val-fraction`` and ``--test-fraction``."""
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
        '--labelled-cases',
        type=int,
        nargs='+',
        default=[],
        help='also write splits with these numbers of labelled cases, e.g. '
        '1 2 4 8 (files seed{seed}_{n}cases.json)')
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


def converter_parser(description: str) -> argparse.ArgumentParser:
    """A parser with the options every converter script has."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument('src_root', help='root folder of the raw dataset')
    parser.add_argument('out_dir', help='output folder (must not exist)')
    parser.add_argument(
        '--classes', help='comma-separated class names, background first')
    parser.add_argument(
        '--slice-axis',
        type=int,
        choices=(0, 1, 2),
        help='slice axis when dataset.json has none, an axis of the '
        'orientation below (default: the axis of largest voxel spacing)')
    parser.add_argument(
        '--ignore-label',
        type=int,
        help='mask value of unannotated voxels (partial labels); stored as '
        '255 and left out of every loss and the metric (a dataset.json '
        "label named 'ignore' does the same)")
    parser.add_argument(
        '--orientation',
        help="axis codes every case is brought to when dataset.json has "
        "none, e.g. 'RAS' (default: the axis order most cases are stored "
        'in; cases stored otherwise are reoriented from their affine)')
    parser.add_argument(
        '--cases', nargs='+', help='convert only these case ids')
    parser.add_argument(
        '--allow-unlabelled',
        action='store_true',
        help='convert cases without a mask as unlabelled')
    parser.add_argument(
        '--unlabelled',
        metavar='DIR',
        help='a folder of further images without masks (unlabelled pool '
        'of every split, never val or test)')
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
    return parser


def start_logger(name: str, log_file: Optional[str] = None) -> None:
    """Create the script's logger once (also when ``main`` runs twice)."""
    if not MMLogger.check_instance_created(name):
        MMLogger.get_instance(
            name, logger_name=name, log_file=log_file, log_level='INFO')


def run_conversion(args: argparse.Namespace, layout: str, logger_name: str,
                   **layout_kwargs) -> int:
    """Convert with the parsed common options; return the exit code.

    Args:
        args (argparse.Namespace): From :func:`converter_parser`.
        layout (str): Layout name for :func:`convert_dataset`.
        logger_name (str): Name of the script's logger.
        **layout_kwargs: Options only this layout has.

    Returns:
        int: 0 on success, 1 when the conversion failed (the reason is
        logged; nothing half-written is left).
    """
    start_logger(logger_name, args.log_file)
    try:
        convert_dataset(
            args.src_root,
            args.out_dir,
            layout,
            classes=args.classes,
            slice_axis=args.slice_axis,
            orientation=args.orientation,
            ignore_label=args.ignore_label,
            unlabelled=args.unlabelled,
            overwrite=args.overwrite,
            cases=args.cases,
            allow_unlabelled=args.allow_unlabelled,
            name=args.name,
            splits=not args.no_splits,
            split_seeds=args.seeds,
            split_ratios=args.ratios,
            split_cases=args.labelled_cases,
            val_fraction=args.val_fraction,
            test_fraction=args.test_fraction,
            **layout_kwargs)
    except (ValueError, OSError) as exc:
        print_log(
            f'conversion failed: {exc}', logger='current', level=logging.ERROR)
        return 1
    return 0
