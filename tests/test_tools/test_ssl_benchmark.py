"""tools/benchmark/ssl_benchmark.py: cells, configs, results and resume."""
import json
import subprocess
import sys
from pathlib import Path

import pytest
from mmengine.config import Config

REPO_ROOT = Path(__file__).resolve().parents[2]
# the benchmark is repository tooling next to its script, not a cps4 module
sys.path.insert(0, str(REPO_ROOT / 'tools' / 'benchmark'))

from ssl_bench import (METHODS, SCHEDULES, STAGE1_CONFIG, Cell,  # noqa: E402
                       LabelAmount, Schedule, SSLBenchmark, apply_schedule,
                       cell_config, choose_prompt_file, difference_table,
                       environment, environment_table, plan_cells,
                       prepare_data, results_table)
RECORD_KEYS = {'method', 'labels', 'label_ratio', 'seed', 'n_labelled_cases',
               'dice_mean', 'dice_per_class', 'train_s', 'test_s'}
HALF, TWO = LabelAmount(ratio=0.5), LabelAmount(cases=2)
FULL = LabelAmount(ratio=1.0)


@pytest.fixture(scope='module')
def tiny_raw(tmp_path_factory):
    from cps4.datasets.synthetic import write_synthetic_dataset
    return write_synthetic_dataset(
        tmp_path_factory.mktemp('bench') / 'raw', num_cases=6, seed=0,
        image_size=(64, 64), progress=False)


def run_bench(raw, work, seeds='0', extra=()):
    # 2 labelled cases, and the full-supervision reference it adds (sup at
    # 100%, 4 cases)
    proc = subprocess.run(
        [sys.executable, str(REPO_ROOT / 'tools/benchmark/ssl_benchmark.py'),
         '--data-root', str(raw), '--layout', 'nnunet', '--methods',
         'sup,cps4', '--labelled-cases', '2', '--seeds', seeds, '--schedule',
         'tiny', '--work-dir', str(work), *extra],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc.stdout + proc.stderr


@pytest.mark.slow
def test_tiny_benchmark_writes_results_and_resumes(tiny_raw, tmp_path):
    work = tmp_path / 'bench'
    # --stage1-only trains the vision-text model and no cell
    log = run_bench(tiny_raw, work, extra=['--stage1-only'])
    assert 'stage 1 2 cases seed 0: Dice' in log
    s1_path = work / 'stage1/2cases/seed0/result.json'
    s1_stamp = s1_path.stat().st_mtime_ns
    assert not (work / 'cells').exists()
    run_bench(tiny_raw, work)
    assert s1_path.stat().st_mtime_ns == s1_stamp  # reused, not retrained
    rows = json.loads((work / 'results.json').read_text())
    records = [r for r in rows if '+' not in r['method']]
    assert [(r['method'], r['labels'], r['seed']) for r in records] == [
        ('sup', '2cases', 0), ('cps4', '2cases', 0), ('sup', '100pct', 0)]
    # each cell also tests its best-on-val checkpoint (validated at
    # iterations 2 and 4): a METHOD+best row beside the last one's
    best_rows = [r for r in rows if r['method'].endswith('+best')]
    assert [(r['method'], r['labels']) for r in best_rows] == [
        ('sup+best', '2cases'), ('cps4+best', '2cases'),
        ('sup+best', '100pct')]
    for r, b in zip(records, best_rows):
        best = r['best']
        assert best['iter'] in (2, 4)
        assert best['same_as_last'] == (best['iter'] == 4)
        assert b['dice_mean'] == best['dice_mean']
        assert b['val_dice'] == best['val_dice'] is not None
        cell = work / 'cells' / r['method'] / r['labels'] / 'seed0'
        if best['same_as_last']:
            assert best['dice_mean'] == r['dice_mean']
        else:
            assert (cell / 'best_test').is_dir()
        assert 0 <= best['dice_mean'] <= 100
    assert [r['n_labelled_cases'] for r in records] == [2, 2, 4]
    assert records[0]['split'] == 'splits/seed0_2cases.json'
    for r in records:
        assert RECORD_KEYS <= set(r), r.keys()
        assert 0 <= r['dice_mean'] <= 100
        assert r['precision'] == 'fp32'
        # the val mDice of the network the cell tests with, at the last
        # iteration: the student of the SSL cell (predict_on='student')
        assert r['val']['val_iter'] == 4
        key = 'mDice' if r['method'] == 'sup' else 'student/mDice'
        assert r['val_dice'] == r['val'][key]
        assert r['train_s'] > 0 and r['test_s'] > 0
        assert len(r['dice_per_class']) == 19  # units, no background
        assert all(v is None or 0 <= v <= 100
                   for v in r['dice_per_class'].values())
    assert 'pseudo_labels' in records[1]  # CPS4 logs its pseudo labels
    # the CPS4 cell used the stage-1 model of its own split
    s1 = json.loads((work / 'stage1/2cases/seed0/result.json').read_text())
    cfg = Config.fromfile(str(work / 'cells/cps4/2cases/seed0/config.py'))
    assert cfg.model.vlm.init_cfg.checkpoint == s1['checkpoint']
    s1_cfg = Config.fromfile(s1['config'])
    assert cfg.model.vlm.prompt == s1_cfg.model.prompt
    assert (work / 'dice_vs_cases.png').stat().st_size > 0
    table = (work / 'results.md').read_text()
    assert '| sup |' in table and '| cps4 |' in table
    assert '| method | 2 cases | 100% (4 cases) |' in table
    assert 'of full]' in table  # each cell as a fraction of full
    assert '| L4 |' in table  # per-class section
    assert '| cps4 | 2cases | 0 |' in table  # pseudo-label section
    assert '## Val mDice' in table
    assert table.startswith('Rows METHOD test the last checkpoint')
    assert '| sup+best |' in table and '| cps4+best |' in table
    # each figure names its environment: one for the three cells
    env = records[0]['environment']
    assert all(r['environment'] == env for r in records)
    assert s1['environment'] == env
    assert '| 3 | sup/2cases/seed0, cps4/2cases/seed0, sup/100pct/seed0 |' \
        in table

    results = sorted(work.glob('**/result.json'))
    stamps = {p: p.stat().st_mtime_ns for p in results}
    # --order scores the finished cells with the anatomical-order
    # post-process, on val and test, and trains nothing
    log = run_bench(tiny_raw, work, extra=['--summary-only', '--order'])
    assert 'training and testing' not in log
    assert log.count('+order: Dice') == 3
    order = json.loads(
        (work / 'cells/cps4/2cases/seed0/order.json').read_text())
    assert set(order) == {'val_dice', 'dice_mean', 'dice_per_class'}
    assert '| cps4+order |' in (work / 'results.md').read_text()
    log = run_bench(tiny_raw, work)
    assert log.count('finished earlier') == 3
    assert 'training and testing' not in log
    assert {p: p.stat().st_mtime_ns for p in results} == stamps

    def cell_rows():  # results.json also holds the +best, +order rows
        rows = json.loads((work / 'results.json').read_text())
        return [r for r in rows if '+' not in r['method']]

    assert cell_rows() == records
    # the stage-1 time is the cell's, even when stage 1 was trained earlier
    assert records[1]['stage1_train_s'] == s1['train_s'] > 0

    # --summary-only tabulates what is finished and trains nothing
    (work / 'results.json').unlink()
    log = run_bench(tiny_raw, work, seeds='0,1', extra=['--summary-only'])
    assert 'training and testing' not in log
    assert '3 of 6 cells not finished' in log and 'cps4 2 cases seed 1' in log
    assert not (work / 'cells/sup/2cases/seed1').exists()
    assert cell_rows() == records


def test_plan_cells_skips_ssl_at_full_labels():
    amounts = LabelAmount.of(ratios=[1.0], cases=[2])
    assert amounts == [TWO, FULL]
    cells, notes = plan_cells(['sup', 'mean_teacher'], amounts, [0, 1])
    assert cells == [Cell('sup', TWO, 0), Cell('sup', TWO, 1),
                     Cell('mean_teacher', TWO, 0),
                     Cell('mean_teacher', TWO, 1), Cell('sup', FULL, 0),
                     Cell('sup', FULL, 1)]
    assert notes == ['mean_teacher at 100%: no unlabelled cases, not run']
    assert cells[2].folder('/w') == '/w/cells/mean_teacher/2cases/seed0'
    assert cells[4].folder('/w') == '/w/cells/sup/100pct/seed0'
    assert cells[2].name == 'mean_teacher 2 cases seed 0'
    assert TWO.split(3) == 'splits/seed3_2cases.json'
    assert LabelAmount(cases=1).text == '1 case'
    assert HALF.split(0) == 'splits/seed0_50pct.json' and not TWO.full
    with pytest.raises(ValueError, match='unknown method.*choose from'):
        plan_cells(['sup', 'pseudo'], [HALF], [0])
    with pytest.raises(ValueError, match='got 1.5'):
        LabelAmount(ratio=1.5)
    with pytest.raises(ValueError, match='positive integer, got 0'):
        LabelAmount(cases=0)
    with pytest.raises(ValueError, match='a ratio or a number of cases'):
        LabelAmount(ratio=0.5, cases=2)


def test_cell_config_sets_data_classes_size_and_schedule():
    schedule = SCHEDULES['quick']
    cfg = cell_config(METHODS['mean_teacher'].config, '/data/x',
                      'splits/seed1_5pct.json', 6, schedule,
                      predict_on='student')
    assert cfg.model.semi_test_cfg.predict_on == 'student'
    sources = cfg.train_dataloader.dataset.datasets
    for ds in [*sources, cfg.val_dataloader.dataset,
               cfg.test_dataloader.dataset]:
        assert ds.data_root == '/data/x'
        assert ds.split == 'splits/seed1_5pct.json'
    assert cfg.model.segmentor.decode_head.num_classes == 6
    assert cfg.train_dataloader.batch_size == 8  # 4 labelled + 4 unlabelled

    small = cell_config(METHODS['sup'].config, '/data/x', 's.json', 3,
                        SCHEDULES['tiny'])
    assert small.model.decode_head.num_classes == 3
    assert small.train_cfg.max_iters == 4
    assert small.train_dataloader.batch_size == 2
    sizes = [t.get('scale', t.get('crop_size'))
             for t in small.train_dataloader.dataset.pipeline
             if t['type'] in ('RandomResize', 'RandomCrop')]
    assert sizes == [(64, 64), (64, 64)]


def test_full_schedule_cps4_config(tmp_path):
    # the stage-1 run's config, with the prompt file the benchmark chose
    stage1 = cell_config(STAGE1_CONFIG, '/d', 's.json', 6, SCHEDULES['full'],
                         stage1=True, prompt_file='/w/prompts.json')
    stage1.dump(str(tmp_path / 'config.py'))
    cfg = cell_config(METHODS['cps4'].config, '/d', 's.json', 6,
                      SCHEDULES['full'],
                      vlm=(str(tmp_path / 'config.py'), '/s1/c.pth'))
    # the rule the VB val cases chose (docs/results.md)
    assert cfg.model.fusion.type == 'ConfidenceWeightedFusion'
    assert cfg.model.fusion.vlm_weight == 10.0
    # the VLM is the stage-1 model, loaded from the stage-1 checkpoint
    vlm = cfg.model.vlm.to_dict()
    assert vlm.pop('init_cfg') == dict(type='Pretrained',
                                       checkpoint='/s1/c.pth')
    assert vlm == stage1.model.to_dict()
    assert vlm['prompt']['prompt_file'] == '/w/prompts.json'
    assert 'checkpoint' not in vlm and 'config' not in vlm
    assert cfg.train_cfg.max_iters == 20000
    assert cfg.train_dataloader.batch_size == 16
    assert cfg.test_dataloader.dataset.pipeline[1]['scale'] == (256, 256)


def test_apply_schedule_sets_ramp_up_lr_and_sizes(tmp_path):
    cfg = Config.fromfile(str(REPO_ROOT / METHODS['fixmatch'].config))
    ramp = cfg.model.semi_train_cfg.rampup_iters
    quick = SCHEDULES['quick']
    apply_schedule(cfg, quick)
    # the ramp-up keeps its share (0.4) of the template's 500 iterations
    assert cfg.model.semi_train_cfg.rampup_iters == ramp * 4 == 800
    assert [(s['begin'], s['end']) for s in cfg.param_scheduler] == [
        (0, 50), (50, 2000)]
    assert cfg.train_cfg.max_iters == 2000
    # a checkpoint every 500 iterations: an interrupted cell resumes; each
    # is validated and the best on val is kept beside the last
    assert cfg.default_hooks.checkpoint.interval == 500
    assert cfg.train_cfg.val_interval == 500
    assert cfg.default_hooks.checkpoint.max_keep_ckpts == 1
    assert cfg.default_hooks.checkpoint.save_best == 'mDice'
    assert cfg.default_hooks.checkpoint.rule == 'greater'
    assert cfg.train_dataloader.sampler.batch_size == 8
    weak = cfg.train_dataloader.dataset.datasets[1].pipeline
    assert weak[2]['scale'] == (128, 128)
    assert weak[4]['crop_size'] == (128, 128)

    # a 4-iteration run still logs its pseudo-label summary
    tiny = Config.fromfile(str(REPO_ROOT / METHODS['fixmatch'].config))
    apply_schedule(tiny, SCHEDULES['tiny'])
    assert [h.interval for h in tiny.custom_hooks
            if h.type == 'PseudoLabelQualityHook'] == [4]

    # stage 1 gets the file's `stage1` keys; a supervised run no ramp-up
    s1 = Config.fromfile(str(REPO_ROOT / STAGE1_CONFIG))
    apply_schedule(s1, quick, stage1=True)
    assert s1.train_cfg.max_iters == quick.stage1_iters == 1000
    assert s1.param_scheduler[-1]['end'] == 1000
    assert s1.train_dataloader.batch_size == 4
    assert 'semi_train_cfg' not in s1.model


def test_schedule_files_cover_the_documented_schedules(tmp_path):
    assert {'tiny', 'demo', 'quick', 'full'} <= set(SCHEDULES)
    tiny = SCHEDULES['tiny']
    assert (tiny.img_size, tiny.iters, tiny.stage1_iters, tiny.batch,
            tiny.rampup_iters, tiny.precision) == (64, 4, 4, 2, 2, 'fp32')
    assert SCHEDULES['quick'].precision == 'bf16'
    assert (SCHEDULES['full'].iters, SCHEDULES['full'].stage1_iters) == (
        20000, 8000)
    bad = tmp_path / 'ssl-benchmark_bad.py'
    bad.write_text('img_size = 64\n')
    with pytest.raises(KeyError, match='ssl-benchmark_bad.py.*missing'):
        Schedule.from_file(str(bad))


def test_results_table_mean_std_over_seeds():
    # records written before amounts in cases carry only label_ratio
    recs = [dict(method='sup', label_ratio=0.05, seed=s, n_labelled_cases=1,
                 dice_mean=d) for s, d in enumerate([50.0, 60.0, 70.0])]
    table = results_table(recs, ['sup', 'cps4'],
                          [LabelAmount(ratio=0.05), FULL])
    assert '| 5% (1 case) | 100% (? cases) |' in table
    assert '| sup | 60.00 +- 10.00 | - |' in table
    assert '| cps4 | - | - |' in table


def test_results_table_in_cases_with_the_ratio_to_full():
    recs = [dict(method='sup', labels='100pct', label_ratio=1.0, seed=s,
                 n_labelled_cases=21, dice_mean=d)
            for s, d in enumerate([78.0, 82.0])]
    recs += [dict(method='mean_teacher', labels='2cases', label_ratio=None,
                  seed=s, n_labelled_cases=2, dice_mean=d)
             for s, d in enumerate([72.0, 76.0])]
    table = results_table(recs, ['sup', 'mean_teacher'], [TWO, FULL])
    assert '| method | 2 cases | 100% (21 cases) |' in table
    # 74 / 80 = 0.925
    assert '| mean_teacher | 74.00 +- 2.83 [0.93 of full] | - |' in table
    assert '| sup | - | 80.00 +- 2.83 [1.00 of full] |' in table


def test_prompt_file_choice(tmp_path):
    vb = choose_prompt_file(['background', 'L1', 'L2', 'L3', 'L4', 'L5'],
                            str(tmp_path))
    assert vb.endswith('vertebral_bodies_l1_l5.json')
    own = choose_prompt_file(['background', 'cord'], str(tmp_path))
    data = json.loads(Path(own).read_text())
    assert [c['name'] for c in data['classes']] == ['background', 'cord']
    assert choose_prompt_file(['a'], str(tmp_path),
                              'x/p.json').endswith('x/p.json')


def test_prepare_data_refuses_another_source(tiny_raw, tmp_path):
    out = tmp_path / 'train'
    meta = prepare_data(str(tiny_raw), 'nnunet', str(out), [0], [0.5])
    assert len(meta['classes']) == 20
    assert (out / 'splits/seed0_50pct.json').is_file()
    other = tmp_path / 'other'
    other.mkdir()
    with pytest.raises(ValueError, match='holds a conversion of'):
        prepare_data(str(other), 'nnunet', str(out), [0], [0.5])


def test_test_root_covers_every_case(tiny_raw, tmp_path):
    from mmengine.registry import init_default_scope

    from cps4.datasets import SpineSliceDataset
    init_default_scope('mmseg')
    bench = SSLBenchmark(str(tmp_path / 'w'), str(tiny_raw), 'nnunet',
                         ['sup'], [0.5], [0], 'tiny',
                         test_root=str(tiny_raw))
    bench.prepare()
    opts = dict(o.split('=', 1) for o in bench.test_options)
    assert opts['test_dataloader.dataset.data_root'] == bench.test_dir
    subsets = opts['test_dataloader.dataset.subset'].strip('[]').split(',')
    ds = SpineSliceDataset(
        data_root=bench.test_dir,
        split=opts['test_dataloader.dataset.split'], subset=subsets,
        pipeline=[])
    cases = {ds.get_data_info(i)['case_id'] for i in range(len(ds))}
    assert len(cases) == 6  # every case of the test root, not a split's


def test_two_copies_on_one_empty_work_dir_convert_once(tiny_raw, tmp_path):
    """Started together, the second copy waits for the first one's
    conversion instead of failing on the half-written folder."""
    work = tmp_path / 'bench'
    cmd = [sys.executable, str(REPO_ROOT / 'tools/benchmark/ssl_benchmark.py'),
           '--data-root', str(tiny_raw), '--layout', 'nnunet', '--methods',
           'sup,cps4', '--label-ratios', '0.5', '--seeds', '0', '--schedule',
           'tiny', '--work-dir', str(work), '--configs-only']
    procs = [subprocess.Popen(cmd, cwd=REPO_ROOT, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True)
             for _ in range(2)]
    logs = [p.communicate(timeout=600)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], logs[0][-2000:] + \
        logs[1][-2000:]
    both = ''.join(logs)
    assert both.count('(nnunet layout) into') == 1, both[-3000:]
    assert 'reusing the converted data' in both
    assert not (work / 'data/train.lock').exists()
    meta = json.loads((work / 'data/train/meta.json').read_text())
    assert len(meta['classes']) == 20
    # --configs-only wrote every config and trained nothing
    for rel in ('cells/sup/50pct/seed0', 'cells/cps4/50pct/seed0',
                'stage1/50pct/seed0'):
        assert (work / rel / 'config.py').is_file()
    assert not list(work.glob('**/*.pth')) and \
        not list(work.glob('**/result.json'))
    cfg = Config.fromfile(str(work / 'cells/cps4/50pct/seed0/config.py'))
    assert cfg.model.vlm.init_cfg.checkpoint == str(
        work / 'stage1/50pct/seed0/iter_4.pth')


def test_environment_names_code_libraries_and_threads():
    import torch
    env = environment()
    assert env['threads'] == torch.get_num_threads()
    assert env['packages']['torch'] == torch.__version__
    assert env['packages']['mmsegmentation'] == '1.2.2'
    assert set(env['packages']) >= {'numpy', 'scipy', 'pillow',
                                    'opencv-python', 'mmcv', 'mmengine'}
    commit = env['commit']  # a git checkout here; None outside one
    assert commit is None or len(commit.split('+')[0]) == 12


def test_environment_table_groups_cells_by_environment():
    base = dict(commit='0123456789ab', python='3.11.7', threads=1,
                packages=dict(torch='2.13.0', numpy='2.4.6', scipy=None))
    two = dict(base, threads=2)
    records = [dict(method='sup', labels='1cases', seed=0, environment=base),
               dict(method='sup', labels='1cases', seed=1, environment=two),
               dict(method='bcp', labels='1cases', seed=0, environment=base),
               dict(method='bcp+best', labels='1cases', seed=0,
                    environment=base),
               dict(method='bcp', labels='1cases', seed=1)]
    lines = environment_table(records).splitlines()
    assert lines[2:] == [
        '| 0123456789ab | 3.11.7 | 1 | torch 2.13.0, numpy 2.4.6 | 2 | '
        'sup/1cases/seed0, bcp/1cases/seed0 |',
        '| 0123456789ab | 3.11.7 | 2 | torch 2.13.0, numpy 2.4.6 | 1 | '
        'sup/1cases/seed1 |',
        '| not recorded | - | - | - | 1 | bcp/1cases/seed1 |']


def test_bf16_precision_sets_the_fast_switches():
    s1 = str(REPO_ROOT / STAGE1_CONFIG)
    fp32 = cell_config(METHODS['cps4'].config, '/d', 's.json', 6,
                       SCHEDULES['quick'], vlm=(s1, '/s1/c.pth'),
                       precision='fp32')
    assert fp32.optim_wrapper.type == 'OptimWrapper'
    assert not any(h['type'] == 'MemoryFormatHook'
                   for h in fp32.custom_hooks)
    bf16 = cell_config(METHODS['cps4'].config, '/d', 's.json', 6,
                       SCHEDULES['quick'], vlm=(s1, '/s1/c.pth'),
                       precision='bf16')
    assert bf16.optim_wrapper.type == 'MixedPrecisionOptimWrapper'
    assert bf16.val_cfg.fp16 and bf16.test_cfg.fp16
    assert bf16.custom_hooks[-1] == dict(type='MemoryFormatHook',
                                         memory_format='channels_last')
    with pytest.raises(ValueError, match='unknown precision'):
        cell_config(METHODS['sup'].config, '/d', 's.json', 6,
                    SCHEDULES['quick'], precision='fp8')


def test_a_work_dir_holds_one_precision(tiny_raw, tmp_path):
    work = tmp_path / 'w'
    done = work / 'cells/sup/50pct/seed0/result.json'
    done.parent.mkdir(parents=True)
    done.write_text(json.dumps(dict(method='sup', label_ratio=0.5, seed=0,
                                    dice_mean=10.0)))  # an older fp32 record
    bench = SSLBenchmark(str(work), str(tiny_raw), 'nnunet', ['sup'], [0.5],
                         [0], 'tiny', precision='bf16')
    bench.prepare()
    with pytest.raises(ValueError, match='was run in fp32.*another '
                       '--work-dir per precision'):
        bench.run_cell(Cell('sup', HALF, 0))


def test_val_table_and_val_metrics(tmp_path):
    from ssl_bench.sweep import val_metrics
    run = tmp_path / 'run' / '20260101_000000' / 'vis_data'
    run.mkdir(parents=True)
    lines = [dict(loss=1.0, step=1),
             {'teacher/mDice': 40.0, 'student/mDice': 45.0, 'step': 4},
             dict(loss=0.5, step=5)]
    (run / 'scalars.json').write_text(
        '\n'.join(json.dumps(x) for x in lines) + '\n')
    assert val_metrics(str(tmp_path / 'run')) == {
        'teacher/mDice': 40.0, 'student/mDice': 45.0, 'val_iter': 4}
    assert val_metrics(str(tmp_path / 'none')) is None
    recs = [dict(method='sup', label_ratio=0.1, seed=s, n_labelled_cases=2,
                 dice_mean=50.0, val_dice=v)
            for s, v in enumerate([60.0, 70.0, None])]
    table = results_table(recs, ['sup'], [LabelAmount(ratio=0.1)],
                          key='val_dice')
    assert '| sup | 65.00 +- 7.07 |' in table


def test_plot_shows_test_and_val_against_cases(monkeypatch):
    """The plot has a test panel and a val panel (cells without a val
    score are left out of the val panel), each with the full-supervision
    line of its own key."""
    from ssl_bench import report
    figures = []
    monkeypatch.setattr(report, 'save_figure',
                        lambda fig, path: figures.append(fig))
    recs = [dict(method='sup', labels=f'{n}cases', label_ratio=None, seed=s,
                 n_labelled_cases=n, dice_mean=t, val_dice=v)
            for s, n, t, v in [(0, 1, 40.0, 30.0), (1, 1, 50.0, None),
                               (0, 2, 60.0, 70.0), (1, 2, 80.0, 72.0)]]
    recs += [dict(method='sup', label_ratio=1.0, seed=s,
                  n_labelled_cases=21, dice_mean=90.0, val_dice=88.0 + s)
             for s in (0, 1)]
    report.plot_dice_vs_cases(recs, ['sup'], 'unused.png')
    test_ax, val_ax = figures[0].axes
    test_line, val_line = test_ax.lines[0], val_ax.lines[0]
    assert list(test_line.get_xdata()) == [1, 2, 21]
    assert list(test_line.get_ydata()) == [45.0, 70.0, 90.0]
    assert list(val_line.get_ydata()) == [30.0, 71.0, 88.5]
    dashed = [[list(ln.get_ydata()) for ln in ax.lines
               if ln.get_linestyle() == '--'] for ax in (test_ax, val_ax)]
    assert dashed == [[[90.0, 90.0]], [[88.5, 88.5]]]


def test_difference_table_pairs_seeds():

    def rec(method, seed, test, val):
        return dict(method=method, label_ratio=0.1, seed=seed,
                    n_labelled_cases=2, dice_mean=test, val_dice=val)

    recs = [rec('sup', 0, 50.0, 55.0), rec('sup', 1, 60.0, 58.0),
            rec('cps4', 0, 56.0, 60.0), rec('cps4', 1, 59.0, 61.0),
            rec('cps4', 2, 90.0, 90.0)]  # seed 2 has no sup: left out
    tenth = [LabelAmount(ratio=0.1)]
    table = difference_table(recs, ['sup', 'cps4'], tenth)
    assert '| cps4 | +2.50 (+4.00), 1/2 seeds |' in table
    assert difference_table(recs, ['cps4'], tenth) == ''


def test_run_stage1_trains_one_model_per_split(tiny_raw, tmp_path,
                                               monkeypatch):
    bench = SSLBenchmark(str(tmp_path / 'w'), str(tiny_raw), 'nnunet',
                         ['sup', 'mean_teacher', 'cps4'], [0.5], [1, 0],
                         'tiny')
    calls = []

    def fake_stage1(amount, seed):
        calls.append((amount, seed))
        if seed == 1:
            return None, 'busy'  # another process trains this one
        return dict(dice_mean=12.5), 'done'

    monkeypatch.setattr(bench, 'stage1', fake_stage1)
    assert bench.run_stage1() == [dict(dice_mean=12.5)]
    assert calls == [(HALF, 0), (HALF, 1)]  # once per split, sup/MT: none

    plain = SSLBenchmark(str(tmp_path / 'w2'), str(tiny_raw), 'nnunet',
                         ['sup', 'mean_teacher'], [0.5], [0], 'tiny')
    with pytest.raises(ValueError, match='has a stage 1'):
        plain.run_stage1()


def test_run_stage1_trains_second_rounds_with_a_finished_source(
        tiny_raw, tmp_path, monkeypatch):
    """``--stage1-only`` trains a second VLM round only where its source
    cell has finished (a stage-1-only run never trains a stage-2 cell)."""
    bench = SSLBenchmark(str(tmp_path / 'w'), str(tiny_raw), 'nnunet',
                         ['cps4_reliability_adabn_vlm2'], [], [0, 1],
                         'tiny', labelled_cases=[1])
    one = LabelAmount(cases=1)
    monkeypatch.setattr(bench, 'stage1', lambda amount, seed: (
        dict(dice_mean=10.0 + seed), 'cached'))
    rounds = []

    def fake_round2(amount, seed, source):
        rounds.append((amount, seed, source))
        return dict(dice_mean=20.0 + seed), 'done'

    monkeypatch.setattr(bench, 'stage1_round2', fake_round2)
    bench.prepare()
    finished = Path(Cell('cps4_reliability_adabn', one, 1).result_path(
        bench.work_dir))
    finished.parent.mkdir(parents=True)
    finished.write_text('{}')
    records = bench.run_stage1()
    # round 1 of both splits; round 2 of split 1 only (split 0 has no
    # finished source cell)
    assert records == [dict(dice_mean=10.0), dict(dice_mean=11.0),
                       dict(dice_mean=21.0)]
    assert rounds == [(one, 1, 'cps4_reliability_adabn')]


def test_order_rows_join_the_tables(tiny_raw, tmp_path):
    bench = SSLBenchmark(str(tmp_path / 'w'), str(tiny_raw), 'nnunet',
                         ['sup', 'mean_teacher'], [], [0, 1], 'tiny',
                         labelled_cases=[2])
    records = []
    for cell, dice in zip(bench.cells, [50.0, 60.0, 55.0, 65.0]):
        records.append(dict(method=cell.method, labels='2cases',
                            label_ratio=None, seed=cell.seed,
                            n_labelled_cases=2, dice_mean=dice,
                            val_dice=dice, dice_per_class={}))
        folder = Path(cell.folder(bench.work_dir))
        folder.mkdir(parents=True)
        if cell.method == 'mean_teacher':  # scored with the order
            (folder / 'order.json').write_text(json.dumps(dict(
                dice_mean=dice + 2, val_dice=dice + 1, dice_per_class={})))
        else:  # scored after AdaBN
            (folder / 'adabn.json').write_text(json.dumps(dict(
                dice_mean=dice + 4, val_dice=dice + 3, dice_per_class={})))
    bench._write(records)
    table = (tmp_path / 'w/results.md').read_text()
    assert '| mean_teacher+order | 62.00 +- 7.07 |' in table
    assert '| mean_teacher+order | +7.00 (+6.00), 2/2 seeds |' in table
    assert '| sup+adabn | 59.00 +- 7.07 |' in table
    assert '| sup+adabn | +4.00 (+3.00), 2/2 seeds |' in table
    rows = json.loads((tmp_path / 'w/results.json').read_text())
    assert [r['method'] for r in rows].count('mean_teacher+order') == 2
    assert [r['method'] for r in rows].count('sup+adabn') == 2
    assert len(rows) == 8


def test_stage1_template_and_one_template_per_work_dir(tiny_raw, tmp_path):
    stride16 = ('configs/cps4/'
                'cps4-vlm_r18_1xb4-1k_synthetic-5pct-128px_token-stride16.py')
    bench = SSLBenchmark(str(tmp_path / 'w'), str(tiny_raw), 'nnunet',
                         ['cps4'], [], [0], 'tiny', labelled_cases=[1],
                         stage1_config=stride16)
    bench.prepare()
    cfg = bench._stage1_config(LabelAmount(cases=1), 0)
    assert cfg.model.token_index == -2
    assert cfg.train_dataloader.dataset.split == 'splits/seed0_1case.json'
    # a stage-1 model of the default template is not reused
    folder = Path(bench._stage1_folder(LabelAmount(cases=1), 0))
    folder.mkdir(parents=True)
    (folder / 'result.json').write_text(json.dumps(dict(
        config='c.py', checkpoint='c.pth', dice_mean=1.0,
        precision='fp32')))
    with pytest.raises(ValueError, match='one --work-dir per stage-1'):
        bench.stage1(LabelAmount(cases=1), 0)


def test_second_vlm_round_learns_from_its_source_cell(tiny_raw, tmp_path,
                                                      monkeypatch):
    """``cps4_reliability_vlm2``: the round-1 VLM and the source cell of the
    same split label the agreement dataset, stage 1 is trained again on it,
    and the cell uses that VLM; every step runs once."""
    from ssl_bench import benchmark as bench_module
    one = LabelAmount(cases=1)
    bench = SSLBenchmark(str(tmp_path / 'w'), str(tiny_raw), 'nnunet',
                         ['cps4_reliability_vlm2'], [], [0], 'tiny',
                         labelled_cases=[1])
    assert [c.method for c in bench.cells] == ['cps4_reliability_vlm2']
    trained, agreements = [], []
    bench.prepare()
    s1_config = str(tmp_path / 's1/config.py')
    (tmp_path / 's1').mkdir()
    bench._stage1_config(one, 0).dump(s1_config)
    monkeypatch.setattr(bench, 'stage1', lambda amount, seed: (dict(
        config=s1_config, checkpoint='s1/iter_8.pth', train_s=10.0),
        'cached'))

    def fake_train_test(cfg, folder, seed, options):
        trained.append((cfg, folder))
        # as train_test does: the config, the last checkpoint and its
        # pointer (no best_*.pth: the cell has no best row)
        cfg.dump(str(Path(folder) / 'config.py'))
        (Path(folder) / 'iter_8.pth').write_bytes(b'')
        (Path(folder) / 'last_checkpoint').write_text(f'{folder}/iter_8.pth')
        return ({'mDice': 50.0, 'Dice.L1': 50.0}, f'{folder}/iter_8.pth',
                7.0, 1.0)

    def fake_agreement(data_root, split, out_dir, experts, log_path):
        agreements.append((data_root, split, out_dir, experts))
        Path(out_dir).mkdir(parents=True)
        meta = json.loads((Path(data_root) / 'meta.json').read_text())
        meta['pseudo_labels'] = dict(pseudo_labelled=['a', 'b'],
                                     agreed_share=0.75)
        (Path(out_dir) / 'meta.json').write_text(json.dumps(meta))
        return 'splits/seed0_1case_agreement.json'

    monkeypatch.setattr(bench_module, 'train_test', fake_train_test)
    monkeypatch.setattr(bench_module, 'agreement_dataset', fake_agreement)
    record, state = bench.run_cell(bench.cells[0])
    assert state == 'done'
    work = Path(bench.work_dir)
    source = work / 'cells/cps4_reliability/1case/seed0'
    round2 = work / 'stage1/1case/seed0_round2_cps4_reliability'
    target = work / 'cells/cps4_reliability_vlm2/1case/seed0'
    assert [f for _, f in trained] == [str(source), str(round2), str(target)]
    # the source cell learns with the round-1 VLM
    assert trained[0][0].model.vlm.init_cfg.checkpoint == 's1/iter_8.pth'
    # its experts: the round-1 VLM and the source cell, on the split's
    # unlabelled cases
    assert agreements == [(bench.train_dir, 'splits/seed0_1case.json',
                           str(round2 / 'data'),
                           [(s1_config, 's1/iter_8.pth'),
                            (str(source / 'config.py'),
                             f'{source}/iter_8.pth')])]
    # round 2 is the stage-1 template on the agreement dataset
    s2_cfg = trained[1][0]
    assert s2_cfg.train_dataloader.dataset.data_root == str(round2 / 'data')
    assert s2_cfg.train_dataloader.dataset.split == (
        'splits/seed0_1case_agreement.json')
    assert s2_cfg.model.type == 'CPS4VLM'
    # the cell uses the round-2 VLM, on the original data
    cell_cfg = trained[2][0]
    assert cell_cfg.model.vlm.init_cfg.checkpoint == f'{round2}/iter_8.pth'
    assert cell_cfg.val_dataloader.dataset.data_root == bench.train_dir
    assert str(round2 / 'data') not in cell_cfg.pretty_text
    # its cost: round 1 and the source cell and round 2
    assert record['stage1_train_s'] == 10.0 + 7.0 + 7.0
    r2 = json.loads((round2 / 'result.json').read_text())
    assert (r2['round'], r2['source'], r2['pseudo_labelled'],
            r2['agreed_share']) == (2, 'cps4_reliability', 2, 0.75)
    # everything is finished now: nothing runs again
    assert bench.run_cell(bench.cells[0])[1] == 'cached'
    assert bench.stage1_round2(one, 0, 'cps4_reliability')[1] == 'cached'
    assert len(trained) == 3 and len(agreements) == 1


def test_second_vlm_round_needs_stage1_methods():
    with pytest.raises(ValueError, match='second VLM round'):
        from ssl_bench import methods as m
        table = dict(m.METHODS, bad=m.Method('x.py', stage1=True,
                                             vlm_round2_from='mean_teacher'))
        import unittest.mock
        with unittest.mock.patch.dict(m.METHODS, table):
            plan_cells(['bad'], [TWO], [0])


@pytest.mark.slow
def test_tiny_second_vlm_round_end_to_end(tiny_raw, tmp_path):
    work = tmp_path / 'bench'
    proc = subprocess.run(
        [sys.executable, str(REPO_ROOT / 'tools/benchmark/ssl_benchmark.py'),
         '--data-root', str(tiny_raw), '--layout', 'nnunet', '--methods',
         'cps4_reliability_vlm2', '--labelled-cases', '2', '--label-ratios',
         '', '--seeds', '0', '--schedule', 'tiny', '--work-dir', str(work)],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    records = json.loads((work / 'results.json').read_text())
    assert [(r['method'], r['labels']) for r in records] == [
        ('cps4_reliability_vlm2', '2cases'),
        ('cps4_reliability_vlm2+best', '2cases')]
    round2 = work / 'stage1/2cases/seed0_round2_cps4_reliability'
    r2 = json.loads((round2 / 'result.json').read_text())
    assert r2['round'] == 2 and 0 <= r2['agreed_share'] <= 1
    assert r2['val']['val_iter'] > 0 and 0 <= r2['dice_mean'] <= 100
    split = json.loads((work / 'data/train/splits/seed0_2cases.json')
                       .read_text())
    new = json.loads((round2 / 'data/splits/seed0_2cases_agreement.json')
                     .read_text())
    assert new['val'] == split['val'] and new['test'] == split['test']
    assert len(new['pseudo_labelled']) == r2['pseudo_labelled']
    # every unlabelled case got an agreement label map
    for case in split['unlabelled']:
        labels = sorted((round2 / 'data/labels').glob(f'{case}_*.png'))
        assert labels and not any(p.is_symlink() for p in labels)
    cfg = Config.fromfile(
        str(work / 'cells/cps4_reliability_vlm2/2cases/seed0/config.py'))
    assert cfg.model.vlm.init_cfg.checkpoint == r2['checkpoint']
    assert records[0]['stage1_train_s'] == pytest.approx(
        r2['train_s'] + r2['earlier_train_s'])


def test_stage1_models_are_tabulated(tiny_raw, tmp_path):
    bench = SSLBenchmark(str(tmp_path / 'w'), str(tiny_raw), 'nnunet',
                         ['cps4', 'cps4_reliability_vlm2'], [], [0, 1],
                         'tiny', labelled_cases=[2])
    one = Path(bench._stage1_folder(TWO, 0))
    two = Path(bench._round2_folder(TWO, 0, 'cps4_reliability'))
    for folder, val, test in ((one, 60.0, 55.5), (two, 66.0, 61.25)):
        folder.mkdir(parents=True)
        (folder / 'result.json').write_text(json.dumps(dict(
            dice_mean=test, val=dict(mDice=val), train_s=300.0)))
    (one / 'adabn_val.json').write_text(json.dumps(dict(results=[
        dict(mDice=60.0), dict(mDice=64.5)])))
    bench._write([])
    table = (tmp_path / 'w/results.md').read_text()
    assert '## Stage 1: the VLM of each split' in table
    assert '| 2cases | 0 | round 1 | 60.00 | 64.50 | 55.50 | 300.0 |' in table
    assert ('| 2cases | 0 | round 2 from cps4_reliability | 66.00 | - | '
            '61.25 | 300.0 |') in table
    assert '| 2cases | 1 |' not in table  # seed 1 has no stage 1 yet


def test_adabn_scores_of_a_trained_cell(tiny_sup_config, tmp_path):
    """A cell scored after AdaBN: statistics from its split's unlabelled
    slices, the adapted checkpoint tested on val and test with
    tools/test.py; the val figure is the one adabn_eval.py measured."""
    from mmengine.runner import Runner
    from ssl_bench.runs import adabn_scores
    cfg = Config.fromfile(tiny_sup_config(tmp_path, 2, ckpt=2))
    for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        cfg[loader].dataset.split = 'splits/seed0_25pct.json'
    cell = tmp_path / 'cell'
    cell.mkdir()
    cfg.work_dir = str(cell)
    cfg.dump(str(cell / 'config.py'))
    Runner.from_cfg(cfg).train()
    out = adabn_scores(str(cell), dict(checkpoint=str(cell / 'iter_2.pth')),
                       [])
    assert set(out) == {'val_dice', 'dice_mean', 'dice_per_class'}
    measured = json.loads((cell / 'adabn/adabn_val.json').read_text())
    assert out['val_dice'] == pytest.approx(
        measured['results'][-1]['mDice'], abs=0.01)
    assert 0 <= out['dice_mean'] <= 100
    # the adapted checkpoint differs from the trained one only in the
    # BatchNorm statistics
    import torch
    trained = torch.load(cell / 'iter_2.pth', weights_only=False)
    adapted = torch.load(cell / 'adabn/adapted.pth', weights_only=False)
    assert set(adapted['state_dict']) == set(trained['state_dict'])
    changed = {k for k, v in adapted['state_dict'].items()
               if not torch.equal(v, trained['state_dict'][k])}
    assert changed and all(k.endswith(('running_mean', 'running_var',
                                       'num_batches_tracked'))
                           for k in changed)
