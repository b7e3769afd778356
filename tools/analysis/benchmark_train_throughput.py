"""Median training-iteration time of semi-supervised configs.

Builds each config's runner, draws real batches from its training
dataloader, and times complete training steps (data preprocessing,
forward, backward, optimiser step, EMA update) after warm-up. Every config
sees the same pre-loaded batches, so data loading is excluded and the
comparison isolates the model cost. Prints a table with the median, the
interquartile range and the ratio to the first config.

Example (CPS4 on top of FixMatch against FixMatch alone)::

    OMP_NUM_THREADS=2 python tools/analysis/benchmark_semi_iteration.py \\
        configs/ssl/fixmatch_unet-s5-d16_fcn_2x4-500_synthetic-5pct-128px.py \\
        configs/cps4/cps4-fixmatch_unet-s5-d16_fcn_2x4-500_synthetic-5pct-128px.py \\
        --cfg-options model.vlm.checkpoint=work_dirs/cps4-vlm_r18_1xb4-1k_synthetic-5pct/iter_1000.pth
"""
import argparse
import statistics
import tempfile
import time

import torch
from mmengine.config import Config, DictAction
from mmengine.logging import MMLogger
from mmengine.runner import Runner
from prettytable import PrettyTable

from cps4.engine import ema_update


def parse_args():
    parser = argparse.ArgumentParser(
        description='Median training-iteration time of configs')
    parser.add_argument('configs', nargs='+')
    parser.add_argument('--iters', type=int, default=30,
                        help='timed iterations per config')
    parser.add_argument('--warmup', type=int, default=5)
    parser.add_argument('--threads', type=int, default=None)
    parser.add_argument(
        '--cfg-options', nargs='+', action=DictAction, default={},
        help='overrides applied to every config (keys a config lacks are '
        'skipped for it)')
    return parser.parse_args()


def build_runner(path, options, work_dir):
    cfg = Config.fromfile(path)
    applicable = {
        k: v for k, v in options.items()
        if _has_parent(cfg, k)
    }
    cfg.merge_from_dict(applicable)
    cfg.work_dir = work_dir
    cfg.train_dataloader.num_workers = 0
    cfg.train_dataloader.persistent_workers = False
    cfg.default_hooks.logger.interval = 10**6
    cfg.log_level = 'WARNING'
    return Runner.from_cfg(cfg)


def _has_parent(cfg, key):
    node = cfg
    parts = key.split('.')
    for part in parts[:-1]:
        if not hasattr(node, 'get') or part not in node:
            return False
        node = node[part]
    return True


def time_steps(runner, batches, warmup, iters):
    model = runner.model
    model.init_weights()
    optim = runner.build_optim_wrapper(runner.cfg.optim_wrapper)
    model.train()
    times = []
    for i in range(warmup + iters):
        batch = batches[i % len(batches)]
        t0 = time.perf_counter()
        model.train_step(batch, optim)
        if hasattr(model, 'teacher'):
            ema_update(model.teacher, model.student, 0.01)
        if i >= warmup:
            times.append(time.perf_counter() - t0)
    return times


def main():
    args = parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    logger = MMLogger.get_instance('benchmark_semi_iteration')
    rows = []
    batches = None
    with tempfile.TemporaryDirectory() as tmp:
        for path in args.configs:
            runner = build_runner(path, args.cfg_options, tmp)
            if batches is None:
                torch.manual_seed(0)
                loader = iter(runner.train_dataloader)
                batches = [next(loader) for _ in range(8)]
                logger.info(f'{len(batches)} batches drawn from {path}')
            times = time_steps(runner, batches, args.warmup, args.iters)
            q = statistics.quantiles(times, n=4)
            rows.append((path, statistics.median(times), q[0], q[2]))
            logger.info(f'{path}: median {rows[-1][1] * 1e3:.0f} ms')
    table = PrettyTable(
        ['config', 'median s/iter', 'IQR s', 'ratio to first'])
    for path, med, lo, hi in rows:
        table.add_row([path, f'{med:.3f}', f'{lo:.3f}-{hi:.3f}',
                       f'{med / rows[0][1]:.2f}x'])
    logger.info('\n' + table.get_string())


if __name__ == '__main__':
    main()
