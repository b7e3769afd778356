"""Pseudo-label the unlabelled cases of a split where models agree, for a
self-training round (e.g. of the stage-1 VLM).

Example (the VLM and the stage-2 model of one benchmark split)::

    S=W/stage1/1case/seed0 C=W/cells/cps4/1case/seed0
    python tools/dataset_converters/agreement_pseudo_labels.py \\
        W/data/train splits/seed0_1case.json W/data/train_round2 \\
        --expert $S/config.py $S/iter_1000.pth \\
        --expert $C/config.py $C/iter_2000.pth

then train the same stage-1 config on it::

    python tools/train.py $S/config.py --cfg-options \\
        train_dataloader.dataset.data_root=W/data/train_round2 \\
        train_dataloader.dataset.split=splits/seed0_1case_agreement.json
"""
import argparse
import sys

from mmengine.logging import MMLogger, print_log

from cps4.apis.pseudo_label_dataset import write_agreement_dataset


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description='Write a converted dataset whose unlabelled cases '
        'carry the labels all experts agree on (255 elsewhere).')
    parser.add_argument('data_root', help='converted dataset')
    parser.add_argument('split', help='split file, relative to data_root')
    parser.add_argument('out_dir', help='output folder')
    parser.add_argument('--expert', nargs=2, action='append', required=True,
                        metavar=('CONFIG', 'CHECKPOINT'),
                        help='a model whose predictions must agree; give '
                        'it twice or more')
    parser.add_argument('--batch-size', type=int, default=8)
    parser.add_argument('--overwrite', action='store_true',
                        help='replace an existing output folder')
    parser.add_argument('--no-progress', action='store_true')
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    MMLogger.get_instance('cps4_pseudo_labels', log_level='INFO')
    try:
        write_agreement_dataset(args.data_root, args.split, args.out_dir,
                                [tuple(e) for e in args.expert],
                                batch_size=args.batch_size,
                                overwrite=args.overwrite,
                                progress=not args.no_progress)
    except (ValueError, OSError, RuntimeError) as exc:
        print_log(f'pseudo-labelling failed: {exc}', logger='current',
                  level=40)
        return 1
    return 0


if __name__ == '__main__':
    sys.exit(main())
