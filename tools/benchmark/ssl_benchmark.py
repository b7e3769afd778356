"""Benchmark semi-supervised methods on one dataset: methods x labelled
amounts x seeds, one command, resumable.

Example (the quick schedule on the shared MyoSegmenTUM volumes; label
efficiency in labelled cases, with full supervision as the reference)::

    python tools/benchmark/ssl_benchmark.py \\
        --data-root ../shared/data/myosegmentum_vb --layout nnunet \\
        --methods sup,mean_teacher,cps4 --labelled-cases 1,2,4 \\
        --seeds 0,1,2 --schedule quick --work-dir work_dirs/bench_vb

Writes ``W/results.json`` (one record per cell), ``W/results.md`` and
``W/dice_vs_cases.png``; the benchmark itself is the package ``ssl_bench``
next to this script. Run a second copy of the same command to use a second
core: the two share the cells out.
"""
import argparse
import sys

from mmengine.logging import MMLogger, print_log

from cps4.datasets.converters import LAYOUTS
from ssl_bench import METHODS, PRECISIONS, SCHEDULES, SSLBenchmark


def _csv(kind):
    def parse(text):
        try:
            return [kind(x) for x in text.split(',') if x.strip()]
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from exc
    return parse


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description='Semi-supervised segmentation benchmark: methods x '
        'labelled amounts (cases or ratios) x seeds.')
    parser.add_argument('--data-root', required=True,
                        help='raw training dataset')
    parser.add_argument('--layout', required=True, choices=sorted(LAYOUTS))
    parser.add_argument(
        '--test-root',
        help='raw dataset (same layout and classes) to test on, every case; '
        'default: the test cases of each split')
    parser.add_argument('--methods', type=_csv(str),
                        default='sup,mean_teacher,cps4',
                        help=f'comma-separated, from {",".join(METHODS)}')
    parser.add_argument(
        '--labelled-cases', type=_csv(int), default=[],
        help='numbers of labelled cases, e.g. 1,2,4,8 (label efficiency as '
        'the field reports it); adds the full-supervision reference (sup '
        'at --label-ratios 1.0) unless --label-ratios is given')
    parser.add_argument(
        '--label-ratios', type=_csv(float), default=None,
        help='labelled ratios of the training pool in (0, 1] (default: '
        '1.0 with --labelled-cases, else 0.05,0.1,1.0; 1.0 is full '
        'supervision, the reference of the "of full" figures)')
    parser.add_argument('--seeds', type=_csv(int), default='0,1,2')
    parser.add_argument('--schedule', choices=sorted(SCHEDULES),
                        default='quick',
                        help='quick: 128 px, 2000 iterations (CPU); '
                        'full: the GPU setting; tiny: smoke check only')
    parser.add_argument('--work-dir', required=True)
    parser.add_argument('--classes',
                        help='class names for the converter (comma-separated,'
                        ' background first), e.g. for png2d without '
                        'dataset.json')
    parser.add_argument('--prompt-file',
                        help='stage-1 prompt file (default: one of '
                        'configs/_base_/prompts/ with the same classes, else '
                        'the class names)')
    parser.add_argument('--cps4-config',
                        help='template config of the cps4 method (default: '
                        'CPS4 on Mean Teacher)')
    parser.add_argument(
        '--stage1-config',
        help='template config of the stage-1 runs (default: '
        'configs/cps4/cps4-vlm_r18_1xb4-1k_synthetic-5pct-128px.py); one '
        '--work-dir per stage-1 template')
    parser.add_argument(
        '--precision', choices=PRECISIONS,
        help='fp32, or bf16 (bfloat16 autocast + channels-last weights); '
        'default: the schedule\'s. One precision per --work-dir')
    parser.add_argument('--configs-only', action='store_true',
                        help='only convert the data and write every cell\'s '
                        'config.py; train nothing')
    parser.add_argument('--stage1-only', action='store_true',
                        help='only train (or reuse) the stage-1 models the '
                        'cells of --methods need, and the second VLM rounds '
                        'whose source cells have finished; a later run '
                        'reuses them')
    parser.add_argument(
        '--order', action='store_true',
        help='also score every finished cell with the anatomical-order '
        'post-process (AnatomicalOrderRefiner) on its val and test cases: '
        'rows METHOD+order; with --summary-only, scores the finished cells '
        'without training')
    parser.add_argument(
        '--adabn', action='store_true',
        help='also score every finished cell (not full supervision) after '
        're-estimating the BatchNorm statistics of its tested network on '
        'its split\'s unlabelled slices (AdaBN, images only): rows '
        'METHOD+adabn, on val and test; with --summary-only, without '
        'training')
    parser.add_argument('--summary-only', action='store_true',
                        help='only write results.json/.md and the plot from '
                        'the cells finished so far; train nothing')
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    if args.label_ratios is None:
        args.label_ratios = [1.0] if args.labelled_cases else [0.05, 0.1, 1.0]
    MMLogger.get_instance('ssl_benchmark', log_level='INFO')
    try:
        bench = SSLBenchmark(
            args.work_dir, args.data_root, args.layout, args.methods,
            args.label_ratios, args.seeds, args.schedule,
            test_root=args.test_root, classes=args.classes,
            prompt_file=args.prompt_file, cps4_config=args.cps4_config,
            precision=args.precision, labelled_cases=args.labelled_cases,
            order=args.order, stage1_config=args.stage1_config,
            adabn=args.adabn)
        if args.summary_only:
            bench.summarize()
        elif args.configs_only:
            bench.write_configs()
        elif args.stage1_only:
            bench.run_stage1()
        else:
            bench.run()
    except (ValueError, FileNotFoundError, RuntimeError) as exc:
        print_log(f'ssl_benchmark failed: {exc}', logger='current',
                  level=40)
        return 1
    return 0


if __name__ == '__main__':
    sys.exit(main())
