"""tools/benchmark/seed_sweep.py trains/tests each (config, seed) cell."""
import argparse
import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
# the sweep helpers are repository tooling next to the script
sys.path.insert(0, str(REPO_ROOT / 'tools' / 'benchmark'))
BASE_CFG = REPO_ROOT / 'configs/supervised/sup_unet-s5-d16-fcn_1xb8-2k_synthetic-100pct-192px.py'
TINY_CFG = """
_base_ = ['{base}']
data_root = '{root}'
train_dataloader = dict(
    batch_size=2, num_workers=0, persistent_workers=False,
    dataset=dict(data_root=data_root, skip_empty=True))
val_dataloader = dict(batch_size=2, num_workers=0, persistent_workers=False,
                      dataset=dict(data_root=data_root))
test_dataloader = dict(batch_size=2, num_workers=0, persistent_workers=False,
                       dataset=dict(data_root=data_root))
test_evaluator = dict(hd95=False)
param_scheduler = []
train_cfg = dict(max_iters=2, val_interval=1000)
default_hooks = dict(
    checkpoint=dict(interval=2, save_best=None),
    visualization=dict(draw=False))
"""


def run_sweep(cfg, work, seeds, *extra):
    proc = subprocess.run(
        [sys.executable, str(REPO_ROOT / 'tools/benchmark/seed_sweep.py'),
         str(cfg), '--seeds', *seeds, '--ratio', '100pct',
         '--work-dir', str(work), *extra],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc.stdout + proc.stderr


@pytest.mark.slow  # about 40 s of subprocess training
def test_sweep_writes_records_and_resumes(tiny_spine_root, tmp_path):
    cfg = tmp_path / 'tiny_sup.py'
    cfg.write_text(TINY_CFG.format(base=BASE_CFG, root=tiny_spine_root))
    work = tmp_path / 'sweep'
    run_sweep(cfg, work, ['0', '1'])
    records = json.loads((work / 'results.json').read_text())
    assert [r['seed'] for r in records] == [0, 1]
    assert [r['split'] for r in records] == [
        'splits/seed0_100pct.json', 'splits/seed1_100pct.json']
    for r in records:
        assert 0.0 <= r['mDice'] <= 100.0
        assert set(r['dice_per_class']) >= {'S', 'L5'}
        assert r['train_s'] > 0
    cell = work / 'tiny_sup' / 'seed1'
    assert (cell / 'iter_2.pth').is_file()
    table = (work / 'results.md').read_text()
    assert 's0: ' in table and 's1: ' in table
    # a second call reuses both finished cells and trains nothing
    mtime = (cell / 'iter_2.pth').stat().st_mtime
    log = run_sweep(cfg, work, ['0', '1'])
    assert log.count('(finished earlier)') == 2, log[-2000:]
    assert (cell / 'iter_2.pth').stat().st_mtime == mtime
    # --summary-only tabulates finished cells and runs none
    log = run_sweep(cfg, work, ['0', '1', '2'], '--summary-only')
    assert 'seed 2: not run yet' in log, log[-2000:]
    assert not (work / 'tiny_sup' / 'seed2').exists()
    assert len(json.loads((work / 'results.json').read_text())) == 2


def _load_tool():
    import importlib.util
    spec = importlib.util.spec_from_file_location(
        'seed_sweep', REPO_ROOT / 'tools/benchmark/seed_sweep.py')
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    return tool


def test_cell_held_by_live_sweep_is_skipped(tmp_path):
    import os
    tool = _load_tool()
    cell = tmp_path / 'cfg' / 'seed0'
    cell.mkdir(parents=True)
    (cell / '.lock').write_text(str(os.getpid()))  # a live owner
    args = argparse.Namespace(summary_only=False)
    record, state = tool.run_cell('cfg.py', 0, '5pct', str(tmp_path), args)
    assert (record, state) == (None, 'busy')
    assert (cell / '.lock').read_text() == str(os.getpid())


def test_stale_lock_is_taken_over(tmp_path):
    import os

    from ssl_bench.sweep import acquire_lock
    proc = subprocess.run([sys.executable, '-c', 'import os; print(os.getpid())'],
                          capture_output=True, text=True)
    dead_pid = int(proc.stdout)  # that process has exited
    lock = tmp_path / '.lock'
    lock.write_text(str(dead_pid))
    assert acquire_lock(str(lock))
    assert lock.read_text() == str(os.getpid())
    assert not acquire_lock(str(lock))  # now held by this live process


def test_split_overrides_cover_concat_datasets():
    sys.path.insert(0, str(REPO_ROOT / 'tools/benchmark'))
    try:
        import seed_sweep
    finally:
        sys.path.pop(0)
    semi = REPO_ROOT / ('configs/ssl/'
                        'fixmatch_unet-s5-d16-fcn_2xb4-500_synthetic-5pct-128px.py')
    out = seed_sweep.split_overrides(str(semi), 'splits/seed2_5pct.json')
    assert out == [
        'train_dataloader.dataset.datasets.0.split=splits/seed2_5pct.json',
        'train_dataloader.dataset.datasets.1.split=splits/seed2_5pct.json',
        'val_dataloader.dataset.split=splits/seed2_5pct.json',
        'test_dataloader.dataset.split=splits/seed2_5pct.json',
    ]
    out = seed_sweep.split_overrides(str(BASE_CFG), 's.json')
    assert out[0] == 'train_dataloader.dataset.split=s.json'


def test_class_dice_writes_absent_classes_as_null_and_summary_skips_them():
    from cps4.evaluation.functional import class_dice
    per_class = class_dice({'mDice': 50.0, 'Dice.L1': 60.0,
                            'Dice.L2': float('nan'), 'slice_mDice': 1.0})
    assert per_class == {'L1': 60.0, 'L2': None}
    json.dumps(per_class, allow_nan=False)  # valid strict JSON
    tool = _load_tool()
    records = [dict(config='a.py', seed=0, mDice=50.0, dice_per_class=per_class),
               dict(config='a.py', seed=1, mDice=70.0,
                    dice_per_class={'L1': 80.0, 'L2': 40.0})]
    table = tool.summarise(records)
    assert '| L1 | 70.00 |' in table
    assert '| L2 | 40.00 |' in table  # the null seed is left out


def test_train_and_test_runs_the_given_entry_points(tmp_path):
    """No repository path is guessed: the entry points are the caller's,
    and the checkpoint a run names relative to its cwd is found there."""
    from ssl_bench.sweep import last_checkpoint, train_and_test
    with pytest.raises(FileNotFoundError, match='tools_dir'):
        train_and_test('c.py', str(tmp_path), tools_dir=str(tmp_path))
    tools = tmp_path / 'tools'
    tools.mkdir()
    # stand-ins for train.py / test.py: record their cwd and arguments
    (tools / 'train.py').write_text(
        'import os, sys\n'
        'work = sys.argv[sys.argv.index("--work-dir") + 1]\n'
        'os.makedirs(work, exist_ok=True)\n'
        'open("ckpt.pth", "w").close()\n'
        'open(os.path.join(work, "last_checkpoint"), "w").write("ckpt.pth")\n')
    (tools / 'test.py').write_text(
        'import json, os, sys\n'
        'work = sys.argv[sys.argv.index("--work-dir") + 1]\n'
        'os.makedirs(os.path.join(work, "run"), exist_ok=True)\n'
        'json.dump(dict(mDice=12.5, ckpt=sys.argv[2], cwd=os.getcwd()),\n'
        '          open(os.path.join(work, "run", "run.json"), "w"))\n')
    cwd = tmp_path / 'root'
    cwd.mkdir()
    cell = tmp_path / 'cell'
    cell.mkdir()
    metrics, ckpt, _, _ = train_and_test('c.py', str(cell),
                                         tools_dir=str(tools), cwd=str(cwd))
    assert ckpt == str(cwd / 'ckpt.pth')
    assert metrics == dict(mDice=12.5, ckpt=ckpt, cwd=str(cwd))
    assert last_checkpoint(str(cell), str(cwd)) == ckpt


def _fake_tools(tmp_path):
    """train.py / test.py stand-ins: train.py appends its arguments to
    ``calls.txt`` and saves ``iter_4.pth``; test.py writes metrics."""
    tools = tmp_path / 'tools'
    tools.mkdir()
    (tools / 'train.py').write_text(
        'import os, sys\n'
        'work = sys.argv[sys.argv.index("--work-dir") + 1]\n'
        'open("calls.txt", "a").write(" ".join(sys.argv[1:]) + "\\n")\n'
        'ckpt = os.path.abspath(os.path.join(work, "iter_4.pth"))\n'
        'open(ckpt, "w").close()\n'
        'open(os.path.join(work, "last_checkpoint"), "w").write(ckpt)\n')
    (tools / 'test.py').write_text(
        'import json, os, sys\n'
        'work = sys.argv[sys.argv.index("--work-dir") + 1]\n'
        'os.makedirs(os.path.join(work, "run"), exist_ok=True)\n'
        'json.dump(dict(mDice=1.0, ckpt=sys.argv[2]),\n'
        '          open(os.path.join(work, "run", "run.json"), "w"))\n')
    return tools


def _interrupted_cell(cell, iteration, log_lines):
    """A cell folder as a killed training leaves it: a checkpoint, the
    pointer to it and the mmengine log of the attempt."""
    cell.mkdir()
    (cell / 'config.py').write_text('train_cfg = dict(max_iters=4)\n')
    ckpt = cell / f'iter_{iteration}.pth'
    ckpt.write_text('')
    (cell / 'last_checkpoint').write_text(str(ckpt))
    stamp = cell / '20261201_100000'
    stamp.mkdir()
    (stamp / '20261201_100000.log').write_text(''.join(
        f'{t} - mmengine - INFO - Iter(train) ...\n' for t in log_lines)
        + 'a line without a time stamp\n')


def test_train_and_test_resumes_an_interrupted_cell(tmp_path):
    from ssl_bench.sweep import train_and_test
    tools = _fake_tools(tmp_path)
    cell = tmp_path / 'cell'
    # the log file's stamps carry the year
    _interrupted_cell(cell, 2, ['2026/12/01 10:00:05', '2026/12/01 10:01:40'])
    # an attempt of another config, before the interrupted one
    (cell / '20261130_100000').mkdir()
    (cell / '20261130_100000' / '20261130_100000.log').write_text(
        '11/30 11:00:00 - mmengine - INFO - x\n')
    metrics, ckpt, train_s, _ = train_and_test(
        str(cell / 'config.py'), str(cell), tools_dir=str(tools),
        cwd=str(tmp_path), resume='20261201_100000')
    calls = (tmp_path / 'calls.txt').read_text().splitlines()
    assert len(calls) == 1 and calls[0].endswith('--resume')
    assert ckpt == str(cell / 'iter_4.pth') and metrics['ckpt'] == ckpt
    # the 100 s of the killed attempt count in the cell's train time
    assert 100 <= train_s < 160
    record = json.loads((cell / 'resume.json').read_text())
    assert record == dict(checkpoint='iter_2.pth', earlier_attempts_s=100.0,
                          trained_to_the_end=False)
    # without resume the same folder is trained afresh
    train_and_test(str(cell / 'config.py'), str(cell), tools_dir=str(tools),
                   cwd=str(tmp_path))
    calls = (tmp_path / 'calls.txt').read_text().splitlines()
    assert len(calls) == 2 and '--resume' not in calls[1]


def test_train_and_test_resumed_at_the_last_iteration_only_tests(tmp_path):
    from ssl_bench.sweep import train_and_test
    tools = _fake_tools(tmp_path)
    cell = tmp_path / 'cell'
    _interrupted_cell(cell, 4, ['12/01 10:00:10'])
    metrics, ckpt, train_s, _ = train_and_test(
        str(cell / 'config.py'), str(cell), tools_dir=str(tools),
        cwd=str(tmp_path), resume='20261201_100000')
    assert not (tmp_path / 'calls.txt').exists()  # no training
    assert metrics['ckpt'] == ckpt == str(cell / 'iter_4.pth')
    assert 10 <= train_s < 60
    assert json.loads((cell / 'resume.json').read_text())[
        'trained_to_the_end'] is True


def test_attempt_seconds_sums_the_logged_attempts(tmp_path):
    from ssl_bench.sweep import attempt_seconds
    # console stamps (no year; across new year) and log-file stamps
    for stamp, last in (('20261231_235950', '01/01 00:00:10'),
                        ('20261202_080000', '2026/12/02 08:30:00')):
        (tmp_path / stamp).mkdir()
        (tmp_path / stamp / f'{stamp}.log').write_text(
            f'{last} - mmengine - INFO - x\n')
    (tmp_path / 'not_a_stamp').mkdir()
    (tmp_path / '20261203_090000').mkdir()  # an attempt without a log
    assert attempt_seconds(str(tmp_path)) == 20 + 1800
    assert attempt_seconds(str(tmp_path), since='20261203_000000') == 20


def test_benchmark_cell_resumes_only_its_own_config(tmp_path, monkeypatch):
    from ssl_bench import runs
    cell = tmp_path / 'cell'
    cell.mkdir()
    assert runs.resumable(str(cell), 'abc') is None  # nothing to resume
    ckpt = cell / 'iter_2.pth'
    ckpt.write_text('')
    (cell / 'last_checkpoint').write_text(str(ckpt))
    assert runs.resumable(str(cell), 'abc') is None  # no attempt.json
    (cell / 'attempt.json').write_text(json.dumps(dict(
        config_sha256='abc', started='20261201_100000')))
    assert runs.resumable(str(cell), 'abc') == '20261201_100000'
    assert runs.resumable(str(cell), 'abd') is None  # another config
    ckpt.unlink()  # the pointer names a missing file
    assert runs.resumable(str(cell), 'abc') is None

    # train_test: the first attempt records its config and start; a second
    # one of the same config resumes it, one of another config starts afresh
    # (and drops the stale pointer)
    from mmengine.config import Config
    calls = []
    monkeypatch.setattr(runs, 'train_and_test',
                        lambda *a, **k: calls.append(k['resume']))
    cfg = Config(dict(train_cfg=dict(max_iters=4)))
    cell2 = tmp_path / 'cell2'
    runs.train_test(cfg, str(cell2), 0, [])
    first = json.loads((cell2 / 'attempt.json').read_text())
    assert calls == [None]
    assert (cell2 / 'config.py').read_text() == cfg.dump()
    ckpt = cell2 / 'iter_2.pth'
    ckpt.write_text('')
    (cell2 / 'last_checkpoint').write_text(str(ckpt))
    # the runner rewrites config.py with its own keys: not compared
    (cell2 / 'config.py').write_text(cfg.dump() + "launcher = 'none'\n")
    runs.train_test(cfg, str(cell2), 0, [])
    assert calls == [None, first['started']]
    other = Config(dict(train_cfg=dict(max_iters=8)))
    runs.train_test(other, str(cell2), 0, [])
    assert calls[-1] is None
    assert not (cell2 / 'last_checkpoint').exists()
    assert json.loads((cell2 / 'attempt.json').read_text())[
        'config_sha256'] != first['config_sha256']
