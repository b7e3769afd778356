"""Segment NIfTI / MetaImage volumes with a trained model.

INPUT is a volume file or a folder of them (nnU-Net ``imagesTs`` naming,
``<case>_0000.nii.gz``, is accepted); OUTPUT is the mask file (one input) or
a folder receiving ``<case>.nii.gz`` per input. Masks have the input's
shape, affine and header geometry and hold the label values of the training
data; every file is written atomically.

Example::

    python tools/infer.py CONFIG work_dirs/x/iter_2000.pth \\
        imagesTs/ predictions/ --device cuda --save-probs
"""
import argparse
import os.path as osp
import sys
import time
from pathlib import Path

from mmengine.config import DictAction
from mmengine.logging import MMLogger

from cps4.apis import (find_volumes, inference_volume, init_model,
                       output_paths, probs_path, save_prediction)
from cps4.engine import to_memory_format
from cps4.utils.fileio import DatasetFormatError


def parse_args():
    parser = argparse.ArgumentParser(
        description='Segment volumes (NIfTI/.mha/.nrrd) with a trained model')
    parser.add_argument('config', help='the config the model was trained with')
    parser.add_argument('checkpoint', help='checkpoint file (.pth)')
    parser.add_argument('input', help='a volume file or a folder of volumes')
    parser.add_argument('output', help='mask file (one input) or folder')
    parser.add_argument('--device', default='cpu',
                        help="'cpu' (default), 'cuda' or 'cuda:N'")
    parser.add_argument('--batch-size', type=int, default=8,
                        help='slices per forward pass (bounds the memory)')
    parser.add_argument('--slice-axis', type=int, choices=(0, 1, 2),
                        help='slice the stored array along this axis as it '
                        'is (default: bring the volume to the training '
                        'orientation from its affine and slice along the '
                        'training slice axis)')
    parser.add_argument('--save-probs', action='store_true',
                        help='also write <case>_probs with one float32 '
                        'component per class')
    parser.add_argument('--overwrite', action='store_true',
                        help='replace existing masks (default: skip them)')
    parser.add_argument('--amp', action='store_true',
                        help='mixed precision (bfloat16 autocast on the CPU, '
                        'float16 on CUDA); default: the config\'s '
                        'test_cfg.fp16')
    parser.add_argument('--channels-last', action='store_true',
                        help='channels-last weights')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='config overrides, key=value')
    return parser.parse_args()


def main():
    args = parse_args()
    logger = MMLogger.get_instance('cps4_infer', log_level='INFO')
    if osp.isdir(args.input):
        inputs = find_volumes(args.input)
    elif osp.isfile(args.input):
        inputs = [Path(args.input)]
    else:
        sys.exit(f'error: input not found: {args.input}')
    try:
        outputs = output_paths(inputs, args.output)
    except ValueError as exc:
        sys.exit(f'error: {exc}')
    model = init_model(args.config, args.checkpoint, args.device,
                       args.cfg_options)
    if args.channels_last:
        to_memory_format(model, 'channels_last')
    failed = []
    for i, (src, dst) in enumerate(zip(inputs, outputs), 1):
        tag = f'[{i}/{len(inputs)}]'
        if dst.exists() and not args.overwrite:
            logger.info(f'{tag} {dst} exists, skipped (--overwrite to '
                        'replace)')
            continue
        start = time.time()
        logger.info(f'{tag} {src.name}')
        try:
            pred = inference_volume(model, src, batch_size=args.batch_size,
                                    slice_axis=args.slice_axis,
                                    with_probs=args.save_probs,
                                    amp=True if args.amp else None)
            save_prediction(pred, dst,
                            probs_path(dst) if args.save_probs else None)
        except (DatasetFormatError, FileNotFoundError) as exc:
            logger.error(f'{tag} {exc}')
            failed.append(src.name)
            continue
        except Exception as exc:  # noqa: BLE001 - one bad file, not the run
            logger.error(f'{tag} {src.name}: failed ({type(exc).__name__}: '
                         f'{exc})')
            failed.append(src.name)
            continue
        logger.info(f'{tag} wrote {dst} (shape {list(pred.labels.shape)}, '
                    f'{time.time() - start:.1f} s)')
    if failed:
        logger.error(f'{len(failed)} of {len(inputs)} input(s) failed and '
                     f'have no mask: {failed}')
        sys.exit(1)

if __name__ == '__main__':
    main()
