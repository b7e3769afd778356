"""tools/analysis/seed_sweep.py trains/tests each (config, seed) cell."""
import json
import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
BASE_CFG = REPO_ROOT / 'configs/supervised/unet-s5-d16_fcn_1xb8-2k_synthetic-100pct.py'
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


def run_sweep(cfg, work, seeds):
    proc = subprocess.run(
        [sys.executable, str(REPO_ROOT / 'tools/analysis/seed_sweep.py'),
         str(cfg), '--seeds', *seeds, '--ratio', '100pct',
         '--work-dir', str(work)],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc.stdout + proc.stderr


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
