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
