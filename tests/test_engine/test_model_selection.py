"""Model selection: validating during training changes no training result
(ValRandomStateHook), the best-on-val checkpoint is kept beside the last
one, and tools/test.py tests both from a work dir."""
import random
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope
from mmengine.runner import Runner

import cps4  # noqa: F401
from cps4.engine import ValRandomStateHook
from cps4.utils import (checkpoint_summary, logged_val_scores,
                        training_checkpoints)
from tiny_models import tiny_student
from tiny_data import use_tiny_semi_data

REPO_ROOT = Path(__file__).resolve().parents[2]
# BCP draws its mixing boxes from torch's generator: a run that validates
# more often trains on other boxes unless validation leaves the stream alone
BCP = 'configs/ssl/bcp_unet-s5-d16-fcn_2xb4-500_synthetic-5pct-128px.py'
ITERS = 4


@pytest.fixture(autouse=True)
def _scope():
    init_default_scope('mmseg')


def tiny_bcp(root: Path, work_dir: Path, val_interval: int,
             isolate: bool = True) -> Config:
    """The BCP config on the tiny dataset, with a tiny UNet, validating
    every ``val_interval`` iterations and keeping the best checkpoint."""
    cfg = Config.fromfile(REPO_ROOT / BCP)
    cfg.model.segmentor = tiny_student(20)
    cfg.model.semi_test_cfg = dict(predict_on='student')
    use_tiny_semi_data(cfg, root, batch_size=4)
    cfg.param_scheduler = []
    cfg.train_cfg = dict(type='IterBasedTrainLoop', max_iters=ITERS,
                         val_interval=val_interval)
    cfg.default_hooks.logger.interval = 1
    cfg.default_hooks.visualization = dict(type='SegVisualizationHook',
                                           draw=False)
    cfg.default_hooks.checkpoint.interval = ITERS
    cfg.custom_hooks = [
        h for h in cfg.custom_hooks
        if h.type != 'PseudoLabelVisualizationHook'
        and (isolate or h.type != 'ValRandomStateHook')
    ]
    cfg.randomness = dict(seed=0)
    cfg.work_dir = str(work_dir)
    return cfg


def train(cfg: Config) -> dict:
    runner = Runner.from_cfg(cfg)
    runner.train()
    return {k: v.detach().clone() for k, v in
            runner.model.state_dict().items()}


def max_difference(a: dict, b: dict) -> float:
    return max((a[k].float() - b[k].float()).abs().max().item() for k in a)


@pytest.fixture(scope='module')
def runs(tiny_spine_root, tmp_path_factory):
    """Weights and work dirs of the same seeded BCP run validated once at
    the end, at every iteration, and at every iteration without the
    hook."""
    base = tmp_path_factory.mktemp('selection')
    out = {}
    for name, interval, isolate in (('end', ITERS, True),
                                    ('every', 1, True),
                                    ('every_unisolated', 1, False)):
        work = base / name
        out[name] = (train(tiny_bcp(tiny_spine_root, work, interval,
                                    isolate)), work)
    return out


def test_hook_restores_every_random_state():
    hook = ValRandomStateHook()
    random.seed(1)
    np.random.seed(1)
    torch.manual_seed(1)
    hook.before_val(None)
    expected = (random.random(), np.random.rand(), torch.rand(1).item())
    # validation draws from all three generators ...
    random.random(), np.random.rand(3), torch.rand(5)
    hook.after_val(None)
    # ... and training continues where it was
    assert (random.random(), np.random.rand(),
            torch.rand(1).item()) == expected


def test_validation_frequency_changes_no_weight(runs):
    end, every = runs['end'][0], runs['every'][0]
    assert max_difference(end, every) == 0.0
    # the check can fail: without the hook the same runs differ
    assert max_difference(end, runs['every_unisolated'][0]) > 0


def test_best_and_last_checkpoints_are_kept(runs):
    work = runs['every'][1]
    found = training_checkpoints(str(work))
    assert Path(found['last']).name == f'iter_{ITERS}.pth'
    assert found['best'] is not None
    scores = logged_val_scores(str(work))
    assert sorted(scores) == list(range(1, ITERS + 1))
    # the student is the tested network here: mDice is its val mDice
    student = logged_val_scores(str(work), 'student/mDice')
    assert scores == student
    best = checkpoint_summary(found['best'])
    # mmengine keeps the first iteration reaching the highest score
    first_max = min(i for i, v in scores.items()
                    if v == max(scores.values()))
    assert best['iter'] == first_max
    assert best['best_score'] == pytest.approx(scores[first_max])
    assert Path(found['best']).name == f'best_mDice_iter_{first_max}.pth'


def test_a_work_dir_without_checkpoints_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match='no last_checkpoint'):
        training_checkpoints(str(tmp_path))
    proc = subprocess.run(
        [sys.executable, str(REPO_ROOT / 'tools/test.py'),
         str(REPO_ROOT / BCP), str(tmp_path)],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 1
    assert f'error: {tmp_path} holds no last_checkpoint' in proc.stderr
    (tmp_path / 'last_checkpoint').write_text(str(tmp_path / 'iter_9.pth'))
    with pytest.raises(FileNotFoundError, match='iter_9.pth'):
        training_checkpoints(str(tmp_path))
    (tmp_path / 'iter_9.pth').write_bytes(b'')
    for name in ('best_mDice_iter_3.pth', 'best_mIoU_iter_5.pth'):
        (tmp_path / name).write_bytes(b'')
    with pytest.raises(ValueError, match='best_mIoU_iter_5.pth'):
        training_checkpoints(str(tmp_path))


def test_tools_test_reports_last_and_best(runs, tiny_spine_root, tmp_path):
    work = runs['every'][1]
    cfg = tiny_bcp(tiny_spine_root, work, 1)
    cfg.test_evaluator.hd95 = False
    config = tmp_path / 'bcp_tiny.py'
    cfg.dump(str(config))
    proc = subprocess.run(
        [sys.executable, str(REPO_ROOT / 'tools/test.py'), str(config),
         str(work), '--work-dir', str(tmp_path / 'test'), '--out',
         str(tmp_path / 'out')],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=600)
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, log[-3000:]
    found = training_checkpoints(str(work))
    best_iter = checkpoint_summary(found['best'])['iter']
    scores = logged_val_scores(str(work))
    assert '| checkpoint | file | iteration | val mDice | test mDice |' in log
    assert f'| last | iter_{ITERS}.pth | {ITERS} | {scores[ITERS]:.2f} |' \
        in log
    assert (f'| best | best_mDice_iter_{best_iter}.pth | {best_iter} | '
            f'{scores[best_iter]:.2f} |') in log
    for name in ('last', 'best'):
        assert (tmp_path / 'test' / name).is_dir()
        assert list((tmp_path / 'out' / name).glob('*.nii.gz'))
