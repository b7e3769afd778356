"""End-to-end training through mmengine's Runner and tools/train.py."""
import subprocess
import sys
from pathlib import Path

import numpy as np
import torch
from mmengine.config import Config
from mmengine.runner import Runner

REPO_ROOT = Path(__file__).resolve().parents[2]
def test_twenty_iterations_lower_the_loss(tiny_sup_config, tmp_path):
    torch.manual_seed(0)
    cfg = Config.fromfile(tiny_sup_config(tmp_path, 20))
    cfg.work_dir = str(tmp_path / 'work')
    runner = Runner.from_cfg(cfg)
    runner.train()
    losses = runner.message_hub.get_scalar('train/loss').data[0]
    assert len(losses) == 20
    assert np.isfinite(losses).all()
    first, last = float(np.mean(losses[:5])), float(np.mean(losses[-5:]))
    assert last < 0.8 * first, (first, last)


def run_train(args, cwd):
    proc = subprocess.run(
        [sys.executable, str(REPO_ROOT / 'tools/train.py'), *args],
        cwd=cwd, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc.stdout + proc.stderr


def test_resume_continues_from_saved_iteration(tiny_sup_config, tmp_path):
    work = tmp_path / 'work'
    run_train([str(tiny_sup_config(tmp_path, 6, ckpt=3)),
               '--work-dir', str(work)], tmp_path)
    assert (work / 'iter_6.pth').is_file()
    # Resume into a longer schedule: the run must start at iteration 6
    # (loading the checkpoint under torch's default weights_only=True).
    log = run_train([str(tiny_sup_config(tmp_path, 9, ckpt=3)),
                     '--work-dir', str(work), '--resume'], tmp_path)
    assert 'resumed epoch: 0, iter: 6' in log, log[-3000:]
    assert 'Iter(train) [7/9]' in log and 'Iter(train) [1/9]' not in log
    ckpt = torch.load(work / 'iter_9.pth', map_location='cpu')
    assert ckpt['meta']['iter'] == 9
