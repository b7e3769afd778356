"""Train a segmentor from a config (stage 1, stage 2 or a baseline)."""
import argparse
import os
import os.path as osp
import sys

from mmengine.config import Config, DictAction
from mmengine.runner import Runner

from cps4.utils import (close_dist, enable_channels_last,
                        enable_mixed_precision, explained_registry_errors,
                        init_cpu_dist, merge_cfg_options)


def parse_args():
    parser = argparse.ArgumentParser(description='Train a CPS4 segmentor')
    parser.add_argument('config', help='train config file path')
    parser.add_argument('--work-dir', help='the dir to save logs and models')
    parser.add_argument(
        '--resume',
        nargs='?',
        type=str,
        const='auto',
        help='resume from the given checkpoint, or from the latest one in '
        'the work dir when no path is given')
    parser.add_argument(
        '--amp',
        action='store_true',
        default=False,
        help='mixed precision: bfloat16 autocast on the CPU, float16 on '
        'CUDA (MixedPrecisionOptimWrapper), validation too')
    parser.add_argument(
        '--channels-last',
        action='store_true',
        help='channels-last weights (MemoryFormatHook); with --amp the '
        'fast CPU setting')
    parser.add_argument(
        '--tensorboard',
        action='store_true',
        help='also log scalars and images (pseudo labels, test overlays) '
        'to TensorBoard: tensorboard --logdir WORK_DIR')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='override settings of the config, key=value pairs, e.g. '
        'train_dataloader.dataset.data_root=data/mine')
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


def add_tensorboard(cfg):
    """Add mmengine's TensorBoard backend to the config's visualizer."""
    try:
        import tensorboard  # noqa: F401
    except ImportError:
        raise SystemExit('--tensorboard needs the tensorboard package: '
                         'pip install tensorboard')
    backends = list(cfg.visualizer.get('vis_backends') or [])
    if not any(b.get('type') == 'TensorboardVisBackend' for b in backends):
        backends.append(dict(type='TensorboardVisBackend'))
    cfg.visualizer.vis_backends = backends


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

    if args.amp:
        enable_mixed_precision(cfg)
    if args.channels_last:
        enable_channels_last(cfg)

    if args.tensorboard:
        add_tensorboard(cfg)

    if args.resume == 'auto':
        cfg.resume = True
        cfg.load_from = None
    elif args.resume is not None:
        cfg.resume = True
        cfg.load_from = args.resume

    with explained_registry_errors():
        runner = Runner.from_cfg(cfg)
    runner.train()
    close_dist()


if __name__ == '__main__':
    main()
