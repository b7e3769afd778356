"""Benchmark the fused pixel-text attention op against its reference.

Prints, per device, shape and mode, the median wall time of the forward and
of forward+backward and the peak extra memory of forward+backward, for the
fused op (``cps4._C``) and the pure-PyTorch reference
(``F.normalize`` + ``einsum`` + activation).

Peak memory: on CUDA ``torch.cuda.max_memory_allocated`` above the inputs;
on CPU the growth of the peak resident set (VmHWM, reset through
``/proc/self/clear_refs``) above the resident set once the inputs exist,
measured in a fresh worker process whose allocator returns every large
block to the system (``MALLOC_MMAP_THRESHOLD_``), so freed memory kept by
malloc cannot hide an allocation.

Example::

    OMP_NUM_THREADS=2 python tools/analysis/profile_pixel_text_attention.py \
        --threads 2 --shapes 8x256x64x64x20 2x64x128x128x20
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import time

import torch
from mmengine.logging import MMLogger
from prettytable import PrettyTable

from cps4.ops import (HAS_EXTENSION, pixel_text_attention,
                      pixel_text_attention_reference)

IMPLS = {'fused': pixel_text_attention,
         'reference': pixel_text_attention_reference}


def parse_args():
    parser = argparse.ArgumentParser(
        description='Fused vs reference pixel-text attention benchmark')
    parser.add_argument(
        '--shapes', nargs='+',
        default=['8x256x64x64x20', '2x64x128x128x20', '16x512x32x32x20',
                 '4x128x96x96x6'],
        help='BxCxHxWxK shapes')
    parser.add_argument('--modes', nargs='+',
                        default=['softmax', 'sigmoid', 'logits'])
    parser.add_argument('--devices', nargs='+', default=None,
                        help='default: cpu, and cuda when available')
    parser.add_argument('--dtypes', nargs='+', default=['float32'],
                        help='float32, float64, float16, bfloat16 (the '
                        'half types on CUDA only)')
    parser.add_argument('--repeats', type=int, default=7)
    parser.add_argument('--threads', type=int, default=None,
                        help='torch CPU threads (default: unchanged)')
    parser.add_argument('--peak-worker', nargs=5, metavar='ARG',
                        help=argparse.SUPPRESS)
    return parser.parse_args()


def _rss_kib(field):
    with open('/proc/self/status') as f:
        for line in f:
            if line.startswith(field):
                return int(line.split()[1])
    raise RuntimeError(f'{field} not in /proc/self/status')


def _reset_peak(device):
    if device == 'cuda':
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        return torch.cuda.memory_allocated()
    with open('/proc/self/clear_refs', 'w') as f:
        f.write('5')
    return _rss_kib('VmRSS:') * 1024


def _peak(device, base):
    if device == 'cuda':
        torch.cuda.synchronize()
        return torch.cuda.max_memory_allocated() - base
    return _rss_kib('VmHWM:') * 1024 - base


def _sync(device):
    if device == 'cuda':
        torch.cuda.synchronize()


def make_case(fn, shape, mode, device, dtype):
    """Inputs and the two timed closures of one benchmark case."""
    b, c, h, w, k = shape
    gen = torch.Generator().manual_seed(0)
    feats = torch.randn(b, c, h, w, generator=gen).to(device, dtype)
    text = torch.randn(1, k, c, generator=gen).to(device, dtype)
    scale = torch.tensor(10.0, dtype=dtype, device=device)
    bias = torch.zeros(k, dtype=dtype, device=device)
    grad = torch.randn(b, k, h, w, generator=gen).to(device, dtype)
    leaves = [t.requires_grad_(True) for t in (feats, text, scale, bias)]

    def fwd():
        with torch.no_grad():
            return fn(feats, text, scale, bias, mode)

    def fwd_bwd():
        out = fn(feats, text, scale, bias, mode)
        return torch.autograd.grad(out, leaves, grad)

    return fwd, fwd_bwd


def peak_memory(impl, shape, mode, device, dtype):
    """Peak extra memory (bytes) of one forward+backward."""
    _, fwd_bwd = make_case(IMPLS[impl], shape, mode, device, dtype)
    base = _reset_peak(device)
    result = fwd_bwd()
    peak = _peak(device, base)
    del result
    return peak


def peak_memory_cpu(impl, shape, mode, dtype_name, threads):
    """Run :func:`peak_memory` in a fresh worker process (see module doc)."""
    env = dict(os.environ, MALLOC_MMAP_THRESHOLD_='65536')
    cmd = [sys.executable, __file__, '--peak-worker', impl,
           'x'.join(map(str, shape)), mode, dtype_name, str(threads)]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True,
                          check=True)
    return json.loads(proc.stdout.strip().splitlines()[-1])['peak']


def run_case(fn, shape, mode, device, dtype, repeats):
    """Median forward and forward+backward wall time in ms."""
    fwd, fwd_bwd = make_case(fn, shape, mode, device, dtype)
    times = {}
    for name, step in (('fwd', fwd), ('fwd+bwd', fwd_bwd)):
        step()  # warm-up
        samples = []
        for _ in range(repeats):
            _sync(device)
            t0 = time.perf_counter()
            step()
            _sync(device)
            samples.append((time.perf_counter() - t0) * 1e3)
        times[name] = statistics.median(samples)
    return times['fwd'], times['fwd+bwd']


def main():
    args = parse_args()
    if args.peak_worker:
        impl, shape, mode, dtype_name, threads = args.peak_worker
        torch.set_num_threads(int(threads))
        peak = peak_memory(impl, tuple(int(v) for v in shape.split('x')),
                           mode, 'cpu', getattr(torch, dtype_name))
        sys.stdout.write(json.dumps(dict(peak=peak)) + '\n')
        return
    logger = MMLogger.get_instance('profile_pixel_text_attention', log_level='INFO')
    if args.threads:
        torch.set_num_threads(args.threads)
    if not HAS_EXTENSION:
        logger.warning('cps4._C is not built: "fused" falls back to the '
                       'reference and both columns measure the same code')
    devices = args.devices or (['cpu', 'cuda']
                               if torch.cuda.is_available() else ['cpu'])
    table = PrettyTable([
        'device', 'dtype', 'shape BxCxHxWxK', 'mode', 'fused fwd ms',
        'ref fwd ms', 'fused fwd+bwd ms', 'ref fwd+bwd ms', 'speed-up',
        'fused peak MiB', 'ref peak MiB', 'mem ratio'
    ])
    for device in devices:
        for dtype_name in args.dtypes:
            dtype = getattr(torch, dtype_name)
            if device == 'cpu' and dtype in (torch.float16, torch.bfloat16):
                continue
            for shape_str in args.shapes:
                shape = tuple(int(v) for v in shape_str.split('x'))
                for mode in args.modes:
                    res = {}
                    for name, fn in IMPLS.items():
                        times = run_case(fn, shape, mode, device, dtype,
                                         args.repeats)
                        if device == 'cpu':
                            peak = peak_memory_cpu(name, shape, mode,
                                                   dtype_name,
                                                   torch.get_num_threads())
                        else:
                            peak = peak_memory(name, shape, mode, device,
                                               dtype)
                        res[name] = times + (peak / 2**20, )
                    f, r = res['fused'], res['reference']
                    table.add_row([
                        device, dtype_name, shape_str, mode, f'{f[0]:.2f}',
                        f'{r[0]:.2f}', f'{f[1]:.2f}', f'{r[1]:.2f}',
                        f'{r[1] / f[1]:.2f}x', f'{f[2]:.1f}', f'{r[2]:.1f}',
                        f'{f[2] / max(r[2], 1e-9):.2f}'
                    ])
                    logger.info(f'done {device} {dtype_name} {shape_str} '
                                f'{mode}')
    threads = torch.get_num_threads()
    logger.info(f'torch {torch.__version__}, CPU threads {threads}\n'
                f'{table.get_string()}')


if __name__ == '__main__':
    main()
