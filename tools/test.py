"""Test a trained segmentor and print the per-class volume Dice table."""
import argparse
import os
import os.path as osp
import sys
from contextlib import ExitStack
from pathlib import Path
from typing import List, Optional, Tuple

from mmengine.config import Config, DictAction
from mmengine.runner import Runner

from cps4.utils import (CheckpointMismatchError, CorruptCheckpointError,
                        UnsafeCheckpointError, atomic_dir,
                        check_checkpoint_fits, checkpoint_summary, close_dist,
                        enable_channels_last, enable_mixed_precision,
                        explained_registry_errors, init_cpu_dist,
                        logged_val_scores, merge_cfg_options,
                        training_checkpoints)


def parse_args():
    parser = argparse.ArgumentParser(description='Test a CPS4 segmentor')
    parser.add_argument('config', help='test config file path')
    parser.add_argument(
        'checkpoint',
        help='checkpoint file, or the work dir of a training run: then its '
        'last checkpoint and its best-on-val checkpoint (save_best) are '
        'both tested, into <work-dir>/last and <work-dir>/best (and '
        '<out>/last, <out>/best), and a table compares them')
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


def checkpoints_to_test(checkpoint: str) -> List[Tuple[Optional[str], str]]:
    """``(name, file)`` pairs: one unnamed file, or ``last`` and ``best`` of
    a training work dir (``best`` only when the run kept one)."""
    if not osp.isdir(checkpoint):
        return [(None, checkpoint)]
    try:
        found = training_checkpoints(checkpoint)
    except (FileNotFoundError, ValueError) as exc:
        sys.exit(f'error: {exc}')
    pairs = [('last', found['last'])]
    if found['best'] is not None:
        pairs.append(('best', found['best']))
    return pairs


def test_checkpoint(args, checkpoint: str, name: Optional[str],
                    out_dir: Optional[str]) -> Tuple[Runner, dict]:
    """Build the runner of ``args.config`` for ``checkpoint`` and test it.

    Args:
        name (str, optional): ``last`` or ``best`` when a work dir's
            checkpoints are tested: a subfolder of the work dir (``--work-dir``,
            the config's, or ``./work_dirs/<config name>``).
        out_dir (str, optional): Where per-case metrics and predictions go.

    Returns:
        tuple: The runner and its test metrics.
    """
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
    if name is not None:
        cfg.work_dir = osp.join(cfg.work_dir, name)
    cfg.load_from = checkpoint
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
    if out_dir is not None:
        add_output_evaluators(cfg, out_dir)
    with explained_registry_errors():
        runner = Runner.from_cfg(cfg)
    # mmengine loads non-strictly: refuse a checkpoint of another model
    # instead of testing a partly random one
    try:
        check_checkpoint_fits(runner.model, checkpoint)
    except (CheckpointMismatchError, CorruptCheckpointError,
            UnsafeCheckpointError, FileNotFoundError) as exc:
        runner.logger.error(str(exc))
        sys.exit(f'error: {exc}')
    return runner, runner.test()


def selection_table(work_dir: str,
                    rows: List[Tuple[str, str, dict]]) -> str:
    """Markdown table of the tested checkpoints of a training work dir:
    which file, the iteration it was saved at, the val mDice the training
    logged there (``-``: not validated at that iteration) and the test
    mDice."""
    val_scores = logged_val_scores(work_dir)
    lines = ['| checkpoint | file | iteration | val mDice | test mDice |',
             '| --- | --- | --- | --- | --- |']
    for name, checkpoint, metrics in rows:
        info = checkpoint_summary(checkpoint)
        val = val_scores.get(info['iter'])
        if val is None and name == 'best':
            val = info['best_score']
        val = '-' if val is None else f'{val:.2f}'
        test = metrics.get('mDice')
        test = '-' if test is None else f'{test:.2f}'
        lines.append(f'| {name} | {osp.basename(checkpoint)} | '
                     f'{info["iter"]} | {val} | {test} |')
    return '\n'.join(lines)


def main():
    args = parse_args()
    if args.out is not None:
        out = Path(args.out)
        if out.exists() and (not out.is_dir() or any(out.iterdir())) and (
                not args.overwrite):
            sys.exit(f'error: --out {out} is not empty (an earlier run?); '
                     'pass --overwrite to replace it or choose another '
                     'folder')
    checkpoints = checkpoints_to_test(args.checkpoint)
    rows = []
    # --out is written into a staging folder that replaces it only when
    # every test succeeded; on any error the earlier set stays as it was
    with ExitStack() as staged:
        stage = (staged.enter_context(atomic_dir(args.out))
                 if args.out is not None else None)
        for name, checkpoint in checkpoints:
            out_dir = None if stage is None else str(stage)
            if stage is not None and name is not None:
                out_dir = str(Path(stage) / name)
            runner, metrics = test_checkpoint(args, checkpoint, name,
                                              out_dir)
            rows.append((name, checkpoint, metrics))
    if args.out is not None:
        runner.logger.info(f'per-case metrics and predictions in {args.out}')
    if checkpoints[0][0] is not None:
        runner.logger.info(
            f'checkpoints of {args.checkpoint} (best: chosen on the val '
            'cases during training; test mDice of each):\n'
            + selection_table(args.checkpoint, rows))
    close_dist()


if __name__ == '__main__':
    main()
