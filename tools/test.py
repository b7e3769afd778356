"""Test a trained segmentor and print the per-class volume Dice table."""
import argparse
import os
import os.path as osp
import sys
from contextlib import ExitStack
from pathlib import Path

from mmengine.config import Config, DictAction
from mmengine.runner import Runner

from cps4.utils import (CheckpointMismatchError, CorruptCheckpointError,
                        UnsafeCheckpointError, atomic_dir,
                        check_checkpoint_fits,
                        enable_channels_last, enable_mixed_precision,
                        explained_registry_errors, init_cpu_dist,
                        merge_cfg_options)


def parse_args():
    parser = argparse.ArgumentParser(description='Test a CPS4 segmentor')
    parser.add_argument('config', help='test config file path')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument(
        '--work-dir',
        help='the dir to save the log and the metrics json file')
    parser.add_argument(
        '--out',
        type=str,
        help='the dir to save per-case metrics (json/csv) and the predicted '
        'volumes (<case>.nii.gz, source label values and affine); written '
        'as one set, which replaces the folder only when the test succeeds')
    parser.add_argument(
        '--overwrite',
        action='store_true',
        help='replace a non-empty --out folder of an earlier run (default: '
        'refuse it, so that two runs are never mixed)')
    parser.add_argument(
        '--show-dir',
        help='directory where painted images (image, ground truth, '
        'prediction) are saved')
    parser.add_argument(
        '--amp',
        action='store_true',
        help='mixed precision (bfloat16 autocast on the CPU, float16 on '
        'CUDA): test_cfg.fp16=True')
    parser.add_argument(
        '--channels-last',
        action='store_true',
        help='channels-last weights (MemoryFormatHook)')
    parser.add_argument(
        '--wait-time', type=float, default=2, help='the interval of show (s)')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='override settings of the config, key=value pairs')
    parser.add_argument(
        '--launcher',
        choices=['none', 'pytorch', 'slurm', 'mpi'],
        default='none',
        help='job launcher')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    args = parser.parse_args()
    if 'LOCAL_RANK' not in os.environ:
        os.environ['LOCAL_RANK'] = str(args.local_rank)
    return args


def trigger_visualization_hook(cfg, args):
    """Make the visualization hook draw every test sample into show_dir."""
    default_hooks = cfg.default_hooks
    if 'visualization' not in default_hooks:
        raise RuntimeError(
            'VisualizationHook must be included in default_hooks; see '
            "configs/_base_/schedules/ for `visualization=dict(...)`.")
    visualization_hook = default_hooks['visualization']
    visualization_hook['draw'] = True
    visualization_hook['interval'] = 1  # every batch, not every 50th
    visualizer = cfg.visualizer
    visualizer['save_dir'] = args.show_dir
    return cfg


def add_output_evaluators(cfg, output_dir: str) -> None:
    """Write per-case metrics and predicted volumes into ``output_dir``."""
    evaluators = cfg.test_evaluator
    if not isinstance(evaluators, (list, tuple)):
        evaluators = [evaluators]
    evaluators = [dict(e) for e in evaluators]
    for e in evaluators:
        if e['type'] == 'VolumeDiceMetric':
            e['output_dir'] = output_dir
    evaluators.append(
        dict(type='DumpVolumePredictions', output_dir=output_dir,
             data_root=cfg.test_dataloader.dataset.data_root))
    cfg.test_evaluator = evaluators


def main():
    args = parse_args()
    cfg = Config.fromfile(args.config)
    cfg.launcher = args.launcher
    init_cpu_dist(cfg)
    try:
        merge_cfg_options(cfg, args.cfg_options)
    except ValueError as exc:
        sys.exit(f'error: {exc}')

    if args.work_dir is not None:
        cfg.work_dir = args.work_dir
    elif cfg.get('work_dir', None) is None:
        cfg.work_dir = osp.join('./work_dirs',
                                osp.splitext(osp.basename(args.config))[0])
    cfg.load_from = args.checkpoint
    # a test loads weights only; the config a resumed training dumped into
    # its work dir keeps resume=True, which would make the runner restore a
    # training state the checkpoint (e.g. an AdaBN-adapted one) may lack
    cfg.resume = False
    if args.amp:
        enable_mixed_precision(cfg, train=False)
    if args.channels_last:
        enable_channels_last(cfg)
    if args.show_dir:
        cfg = trigger_visualization_hook(cfg, args)
    if args.out is not None:
        out = Path(args.out)
        if out.exists() and (not out.is_dir() or any(out.iterdir())) and (
                not args.overwrite):
            sys.exit(f'error: --out {out} is not empty (an earlier run?); '
                     'pass --overwrite to replace it or choose another '
                     'folder')
    # --out is written into a staging folder that replaces it only when the
    # whole test succeeded; on any error the earlier set stays as it was
    with ExitStack() as staged:
        if args.out is not None:
            stage = staged.enter_context(atomic_dir(args.out))
            add_output_evaluators(cfg, str(stage))
        with explained_registry_errors():
            runner = Runner.from_cfg(cfg)
        # mmengine loads non-strictly: refuse a checkpoint of another model
        # instead of testing a partly random one
        try:
            check_checkpoint_fits(runner.model, args.checkpoint)
        except (CheckpointMismatchError, CorruptCheckpointError,
                UnsafeCheckpointError, FileNotFoundError) as exc:
            runner.logger.error(str(exc))
            sys.exit(f'error: {exc}')
        runner.test()
    if args.out is not None:
        runner.logger.info(f'per-case metrics and predictions in {args.out}')

if __name__ == '__main__':
    main()
