"""Peak memory and speed of volume inference, per slice batch size.

Writes one synthetic volume (default 512 x 512 x 200 voxels, int16, 2D
slices along the last axis: the size of a large sagittal MR series), then
segments it with ``cps4.apis.inference_volume`` once per batch size, each in
a fresh process so that every peak is measured on its own. Prints a table:
the process's resident memory after loading the model, its peak during
inference (``ru_maxrss``), the peak above that baseline, the size of the
input array, and the slices per second.

Example::

    python tools/analysis/profile_infer_memory.py CONFIG CHECKPOINT \\
        --shape 512 512 200 --batch-sizes 1 8 32
"""
import argparse
import json
import os
import os.path as osp
import resource
import subprocess
import sys
import tempfile
import time

import numpy as np


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('config')
    parser.add_argument('checkpoint')
    parser.add_argument('--shape', type=int, nargs=3, default=[512, 512, 200],
                        help='volume shape; the last axis has the largest '
                        'spacing, so it is the slice axis')
    parser.add_argument('--batch-sizes', type=int, nargs='+',
                        default=[1, 8, 32])
    parser.add_argument('--device', default='cpu')
    parser.add_argument('--child', nargs=2, metavar=('VOLUME', 'BATCH'),
                        help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def rss_mib() -> float:
    """Current resident set size of this process in MiB."""
    with open('/proc/self/status') as f:
        for line in f:
            if line.startswith('VmRSS:'):
                return int(line.split()[1]) / 1024
    raise RuntimeError('no VmRSS in /proc/self/status')


def write_volume(path: str, shape) -> None:
    """A smooth int16 phantom with noise, 0.8 x 0.8 x 4 mm voxels."""
    import nibabel as nib
    rng = np.random.default_rng(0)
    x, y = np.meshgrid(np.linspace(-1, 1, shape[0]),
                       np.linspace(-1, 1, shape[1]), indexing='ij')
    base = (600 * np.exp(-(x**2 + 4 * y**2) * 3)).astype(np.float32)
    vol = np.empty(shape, np.int16)
    for k in range(shape[2]):
        noise = rng.normal(0, 40, shape[:2]).astype(np.float32)
        vol[..., k] = np.clip(base * (0.8 + 0.4 * k / shape[2]) + noise, 0,
                              4000).astype(np.int16)
    nib.save(nib.Nifti1Image(vol, np.diag([0.8, 0.8, 4.0, 1.0])), path)


def child(args) -> None:
    """Load the model, segment the volume once, print a JSON record."""
    from cps4.apis import inference_volume, init_model
    volume, batch = args.child[0], int(args.child[1])
    model = init_model(args.config, args.checkpoint, args.device)
    baseline = rss_mib()
    start = time.time()
    pred = inference_volume(model, volume, batch_size=batch, progress=False)
    seconds = time.time() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    n = pred.labels.shape[pred.slice_axis]
    print(json.dumps(dict(batch=batch, baseline_mib=baseline, peak_mib=peak,
                          slices=n, seconds=seconds)))


def main():
    args = parse_args()
    if args.child:
        child(args)
        return
    from mmengine.logging import MMLogger
    from prettytable import PrettyTable
    logger = MMLogger.get_instance('profile_infer_memory')
    shape = tuple(args.shape)
    with tempfile.TemporaryDirectory() as tmp:
        volume = osp.join(tmp, 'volume_0000.nii.gz')
        logger.info(f'writing a {shape} int16 volume')
        write_volume(volume, shape)
        rows = []
        for batch in args.batch_sizes:
            logger.info(f'batch size {batch}: segmenting {shape[2]} slices')
            proc = subprocess.run(
                [sys.executable, __file__, args.config, args.checkpoint,
                 '--device', args.device, '--child', volume, str(batch)],
                capture_output=True, text=True,
                env=dict(os.environ, PYTHONWARNINGS='ignore'))
            if proc.returncode != 0:
                raise RuntimeError(proc.stderr[-3000:])
            rows.append(json.loads(proc.stdout.strip().splitlines()[-1]))
    float32_mib = np.prod(shape) * 4 / 2**20
    table = PrettyTable(['batch', 'RSS after model load (MiB)',
                         'peak RSS (MiB)', 'peak - baseline (MiB)',
                         'slices/s'])
    for r in rows:
        table.add_row([r['batch'], f'{r["baseline_mib"]:.0f}',
                       f'{r["peak_mib"]:.0f}',
                       f'{r["peak_mib"] - r["baseline_mib"]:.0f}',
                       f'{r["slices"] / r["seconds"]:.1f}'])
    logger.info(f'volume {shape} ({float32_mib:.0f} MiB as float32), '
                f'{args.config}, device {args.device}:\n{table}')


if __name__ == '__main__':
    main()
