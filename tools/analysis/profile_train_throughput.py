"""Seconds per training iteration of configs in fp32, bf16 and
bf16 + channels-last, side by side.

Builds each config's runner, draws real batches from its training
dataloader once, and times complete training steps (data preprocessing,
forward, backward, optimizer step and, for a student/teacher model, the EMA
update) after a warm-up, in every precision mode on the same pre-loaded
batches and the same initial weights. Data loading is excluded, so the
table isolates the model's cost. Prints the median, the interquartile range,
the speed-up over fp32 and the ratio to the first config.

Modes: ``fp32``; ``bf16`` (``MixedPrecisionOptimWrapper``: bfloat16
autocast on the CPU); ``bf16+cl`` (bf16 and channels-last weights, as
``MemoryFormatHook`` sets them).

Example (the SSL benchmark's quick cells; ``--configs-only`` writes their
configs without training, see docs/results.md)::

    python tools/analysis/profile_train_throughput.py \\
        W/cells/sup/10pct/seed0/config.py \\
        W/cells/mean_teacher/10pct/seed0/config.py \\
        W/cells/cps4/10pct/seed0/config.py --threads 1 \\
        --cfg-options model.vlm.init_cfg.checkpoint=None
"""
import argparse
import copy
import statistics
import tempfile
import time

import torch
from mmengine.config import Config, DictAction
from mmengine.logging import MMLogger
from mmengine.model import is_model_wrapper
from mmengine.registry import init_default_scope
from mmengine.runner import Runner
from prettytable import PrettyTable

from cps4.engine import ema_update, to_memory_format
from cps4.utils import disable_mixed_precision, enable_mixed_precision
from cps4.utils.fileio import write_json_atomic

MODES = ('fp32', 'bf16', 'bf16+cl')


def parse_args():
    parser = argparse.ArgumentParser(
        description='Seconds per training iteration of configs in fp32, '
        'bf16 and bf16 + channels-last')
    parser.add_argument('configs', nargs='+')
    parser.add_argument('--modes', default=','.join(MODES),
                        help=f'comma-separated, from {",".join(MODES)}')
    parser.add_argument('--iters', type=int, default=20,
                        help='timed iterations per config and mode')
    parser.add_argument('--warmup', type=int, default=5)
    parser.add_argument('--batches', type=int, default=8,
                        help='distinct pre-loaded batches, used in turn')
    parser.add_argument('--threads', type=int, default=None,
                        help='torch threads (default: torch\'s choice)')
    parser.add_argument('--out', help='also write the rows to this JSON file')
    parser.add_argument(
        '--cfg-options', nargs='+', action=DictAction, default={},
        help='overrides applied to every config (keys whose parent a '
        'config lacks are skipped for it)')
    args = parser.parse_args()
    args.modes = [m.strip() for m in args.modes.split(',') if m.strip()]
    unknown = [m for m in args.modes if m not in MODES]
    if unknown:
        parser.error(f'unknown mode(s) {unknown}; choose from {MODES}')
    return args


def _has_parent(cfg: Config, key: str) -> bool:
    node = cfg
    for part in key.split('.')[:-1]:
        if not hasattr(node, 'get') or part not in node:
            return False
        node = node[part]
    return True


def load_config(path: str, options: dict, work_dir: str) -> Config:
    """The config with the overrides that apply to it, logging silenced."""
    cfg = Config.fromfile(path)
    cfg.merge_from_dict({k: v for k, v in options.items()
                         if _has_parent(cfg, k)})
    cfg.work_dir = work_dir
    cfg.train_dataloader.num_workers = 0
    cfg.train_dataloader.persistent_workers = False
    cfg.default_hooks.logger.interval = 10**6
    cfg.log_level = 'WARNING'
    return cfg


def time_mode(cfg: Config, mode: str, batches: list, warmup: int,
              iters: int) -> list:
    """Seconds of each timed training step of ``cfg`` in ``mode``."""
    cfg = disable_mixed_precision(copy.deepcopy(cfg))  # every mode from fp32
    if mode != 'fp32':
        enable_mixed_precision(cfg)
    runner = Runner.from_cfg(cfg)
    model = runner.model
    if is_model_wrapper(model):
        model = model.module
    model.init_weights()
    if mode.endswith('+cl'):
        to_memory_format(model, 'channels_last')
    optim = runner.build_optim_wrapper(cfg.optim_wrapper)
    model.train()
    times = []
    for i in range(warmup + iters):
        batch = batches[i % len(batches)]
        start = time.perf_counter()
        model.train_step(batch, optim)
        if hasattr(model, 'teacher') and hasattr(model, 'student'):
            ema_update(model.teacher, model.student, 0.01)
        if i >= warmup:
            times.append(time.perf_counter() - start)
    return times


def main():
    args = parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    logger = MMLogger.get_instance('profile_train_throughput')
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for path in args.configs:
            cfg = load_config(path, args.cfg_options, tmp)
            init_default_scope(cfg.get('default_scope', 'mmseg'))
            torch.manual_seed(0)
            loader = iter(Runner.build_dataloader(cfg.train_dataloader))
            batches = [next(loader) for _ in range(args.batches)]
            for mode in args.modes:
                torch.manual_seed(0)
                times = time_mode(cfg, mode, batches, args.warmup, args.iters)
                q = statistics.quantiles(times, n=4)
                rows.append(dict(config=path, mode=mode,
                                 median_s=statistics.median(times),
                                 q1_s=q[0], q3_s=q[2]))
                logger.info(f'{path} [{mode}]: median '
                            f'{rows[-1]["median_s"] * 1e3:.0f} ms/iter')
    first = rows[0]['median_s'] if rows else 1.0
    fp32 = {r['config']: r['median_s'] for r in rows if r['mode'] == 'fp32'}
    table = PrettyTable(['config', 'mode', 'median s/iter', 'IQR s',
                         'speed-up vs fp32', 'ratio to first'])
    for r in rows:
        base = fp32.get(r['config'])
        r['speedup_vs_fp32'] = base / r['median_s'] if base else None
        table.add_row([
            r['config'], r['mode'], f'{r["median_s"]:.3f}',
            f'{r["q1_s"]:.3f}-{r["q3_s"]:.3f}',
            f'{r["speedup_vs_fp32"]:.2f}x' if base else '-',
            f'{r["median_s"] / first:.2f}x'
        ])
    logger.info('\n' + table.get_string())
    if args.out:
        write_json_atomic(args.out, rows)


if __name__ == '__main__':
    main()
